/**
 * Telegram ingress under load: autocannon POSTs updates (each with a new update_id) to
 * `/telegram/:agentId` of the platform's web process on the real PostgreSQL and Redis, and to a bare
 * Hono route that only parses JSON, each in its own child process, in the same run. Prints:
 *   ingress: platform N req/s p99 X ms (P posted, A answered, S stored, L acknowledged but not stored) | bare …
 * L must be 0: every update answered 200 is stored with its event sent. S lies between A and P: when
 * autocannon stops, each connection has built its next update, and may or may not have written it.
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
  /** Updates autocannon built: answered, in flight, or built and never written when it stopped. */
  posted: number;
  /** The update_ids answered 200. */
  acknowledged: number[];
}

/** What autocannon keeps per connection: the update being sent on it (one at a time, no pipelining). */
interface Sending {
  updateId?: number;
}

async function load(port: number, agentId: string, secret: string): Promise<Load> {
  let updateId = 1;
  const acknowledged: number[] = [];
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/telegram/${agentId}`,
    method: 'POST',
    connections: CONNECTIONS,
    duration: SECONDS,
    headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': secret },
    requests: [
      {
        setupRequest: (request, context: Sending) => {
          const id = updateId++;
          context.updateId = id;
          return { ...request, body: JSON.stringify(textUpdate(id, 100_000 + (id % 500), `message ${id}`)) };
        },
        onResponse: (status, _body, context: Sending) => {
          if (status === 200 && context.updateId !== undefined) acknowledged.push(context.updateId);
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
    acknowledged,
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
  const lost = await client.query<{ n: number }>(
    `select count(*)::int as n from unnest($1::bigint[]) as acked(update_id)
     where not exists (select 1 from telegram_messages m
                       where m.update_id = acked.update_id and m.direction = 'inbound' and m.event_sent_at is not null)`,
    [measured.acknowledged],
  );
  await client.end();

  process.stdout.write(
    `ingress: platform ${measured.rps.toFixed(0)} req/s p50 ${measured.p50} ms p99 ${measured.p99} ms` +
      ` (${measured.errors} errors; ${measured.posted} posted, ${measured.requests} answered,` +
      ` ${stored.rows[0]?.n} stored with their event sent,` +
      ` ${lost.rows[0]?.n} of ${measured.acknowledged.length} acknowledged not stored;` +
      ` max RSS ${(rss / 2 ** 20).toFixed(0)} MB)` +
      ` | bare Hono ${baseline.rps.toFixed(0)} req/s p99 ${baseline.p99} ms` +
      ` | ratio ${(measured.rps / baseline.rps).toFixed(2)}` +
      ` (${CONNECTIONS} connections, ${SECONDS} s each, PostgreSQL + Redis)\n`,
  );
} finally {
  await scratch.drop();
}
process.exit(0);
