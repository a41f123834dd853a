/**
 * Telegram ingress under load: autocannon POSTs updates (each with a new update_id) to
 * `/telegram/:agentId` of the platform's web process on the real PostgreSQL and Redis, and to a bare
 * Hono route that only parses JSON, each in its own child process, in the same run. Prints:
 *   ingress: platform N req/s p99 X ms (P posted, A answered, S stored) | bare M req/s p99 Y ms | ratio R
 * S must equal P: an update autocannon wrote just before it stopped is stored though never counted.
 *
 *   npm run bench:ingress          # BENCH_SECONDS=10 BENCH_CONNECTIONS=40
 *
 * 40 connections is how Telegram delivers a busy bot's updates: setWebhook's max_connections
 * defaults to 40, and the platform leaves it there.
 */
import autocannon from 'autocannon';
import pg from 'pg';
import { forkPlatform, textUpdate } from './support/fork-platform';
import { ADMIN_URL, scratchPostgres } from './support/scratch-postgres';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 40);

interface Load {
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** Updates autocannon wrote, answered or still in flight when it stopped. */
  posted: number;
}

async function load(port: number, agentId: string, secret: string): Promise<Load> {
  let updateId = 1;
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/telegram/${agentId}`,
    method: 'POST',
    connections: CONNECTIONS,
    duration: SECONDS,
    headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': secret },
    requests: [
      {
        setupRequest: (request) => {
          const id = updateId++;
          return { ...request, body: JSON.stringify(textUpdate(id, 100_000 + (id % 500), `message ${id}`)) };
        },
      },
    ],
  });
  return {
    requests: result.requests.total,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
    posted: updateId - 1,
  };
}

const scratch = await scratchPostgres();
if (!scratch) {
  process.stdout.write(`ingress: skipped (${ADMIN_URL} not reachable)\n`);
  process.exit(0);
}
try {
  const bare = await forkPlatform('bare');
  const baseline = await load(bare.port, bare.agentId, bare.secret);
  await bare.stop();

  const web = await forkPlatform('web', { BENCH_PLATFORM_DATABASE_URL: scratch.url });
  const measured = await load(web.port, web.agentId, web.secret);
  const rss = web.maxRss();
  await web.stop();

  const client = new pg.Client({ connectionString: scratch.url });
  await client.connect();
  const stored = await client.query<{ n: number }>(
    `select count(*)::int as n from telegram_messages where direction = 'inbound' and event_sent_at is not null`,
  );
  await client.end();

  process.stdout.write(
    `ingress: platform ${measured.rps.toFixed(0)} req/s p50 ${measured.p50} ms p99 ${measured.p99} ms` +
      ` (${measured.errors} errors; ${measured.posted} posted, ${measured.requests} answered,` +
      ` ${stored.rows[0]?.n} stored with their event sent;` +
      ` max RSS ${(rss / 2 ** 20).toFixed(0)} MB)` +
      ` | bare Hono ${baseline.rps.toFixed(0)} req/s p99 ${baseline.p99} ms` +
      ` | ratio ${(measured.rps / baseline.rps).toFixed(2)}` +
      ` (${CONNECTIONS} connections, ${SECONDS} s each, PostgreSQL + Redis)\n`,
  );
} finally {
  await scratch.drop();
}
process.exit(0);
