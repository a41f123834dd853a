/**
 * End to end under load: updates POSTed to `/telegram/:agentId` of the platform (web + worker in one
 * process, `npm start`'s shape, on the real PostgreSQL and Redis) at a steady rate across many chats,
 * answered through the fake Anthropic (instant) and the fake Telegram Bot API, which records each
 * sendMessage. Latency is webhook POST to sendMessage received, i.e. the platform's own overhead.
 * Prints one line per offered rate:
 *   e2e: offered R msg/s … sent N, answered M (D duplicate, U unanswered, O out of order) … p50 X ms p99 Y ms … max RSS Z MB
 * M must equal N, and D, U and O be 0: each message answered once, each chat's in the order sent (a
 * chat's messages are posted BENCH_CHATS / rate seconds apart, so they arrive in that order too).
 *
 *   npm run bench:e2e          # BENCH_RATES=200,50 BENCH_SECONDS=10 BENCH_CHATS=500 BENCH_WARMUP=300 [BENCH_SPLIT=1 BENCH_WORKERS=1 BENCH_ANALYZE=1]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { startFakeAnthropic } from '../test/support/fake-anthropic';
import { startFakeTelegram } from '../test/support/fake-telegram';
import { forkPlatform, textUpdate } from './support/fork-platform';
import { percentile } from './support/percentile';
import { ADMIN_URL, scratchPostgres } from './support/scratch-postgres';

const RATES = (process.env.BENCH_RATES ?? '200,50').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CHATS = Number(process.env.BENCH_CHATS ?? 500);
/** BENCH_SPLIT=1: a web and a worker process (Heroku's shape) instead of one process (`npm start`). */
const SPLIT = Boolean(process.env.BENCH_SPLIT);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 1);
/** After the last send, how long the answers may take to arrive. */
const DRAIN_MS = Number(process.env.BENCH_DRAIN_MS ?? 120_000);
/** Messages answered before the measured ones, at up to WARMUP_RATE/s (not counted in the figures). */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 300);
const WARMUP_RATE = 25;
/** After the expected answers arrived, how long to keep counting (a duplicate would come late). */
const SETTLE_MS = 1_000;
const BOT_TOKEN = `4242424242:AAE${'b'.repeat(32)}`;
const CLAUDE_KEY = `sk-ant-api03-${'b'.repeat(40)}`;

async function analyze(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('analyze');
  } finally {
    await client.end();
  }
}

async function run(rate: number): Promise<string> {
  const scratch = await scratchPostgres();
  if (!scratch) return `e2e: skipped (${ADMIN_URL} not reachable)`;
  const telegram = await startFakeTelegram();
  const anthropic = await startFakeAnthropic();
  telegram.addBot(BOT_TOKEN, { id: 4242424242, first_name: 'Bench', username: 'bench_bot' });
  anthropic.addKey(CLAUDE_KEY);
  const env = {
    BENCH_PLATFORM_DATABASE_URL: scratch.url,
    BENCH_BOT_TOKEN: BOT_TOKEN,
    BENCH_CLAUDE_KEY: CLAUDE_KEY,
    TELEGRAM_API_ROOT: telegram.apiRoot,
    ANTHROPIC_BASE_URL: anthropic.baseURL,
  };
  const platform = await forkPlatform(SPLIT ? 'web' : 'full', env);
  const workers = SPLIT
    ? await Promise.all(Array.from({ length: WORKERS }, () => forkPlatform('worker', env)))
    : [];
  try {
    const url = `http://127.0.0.1:${platform.port}/telegram/${platform.agentId}`;
    const headers = {
      'content-type': 'application/json',
      'x-telegram-bot-api-secret-token': platform.secret,
    };
    /** Offers `count` messages at `perSecond`, numbered from `first`; resolves once every POST has its response. */
    const offer = async (first: number, count: number, perSecond: number) => {
      const sentAt = new Map<string, number>();
      let failedPosts = 0;
      const posts: Promise<void>[] = [];
      const start = Date.now();
      for (let i = first; i < first + count; i += 1) {
        const wait = start + ((i - first) * 1000) / perSecond - Date.now();
        if (wait > 0) await sleep(wait);
        const text = `m${i}`;
        sentAt.set(text, Date.now());
        posts.push(
          fetch(url, {
            method: 'POST',
            headers,
            body: JSON.stringify(textUpdate(i + 1, 200_000 + (i % CHATS), text)),
          }).then(
            async (res) => {
              await res.arrayBuffer();
              if (res.status !== 200) failedPosts += 1;
            },
            () => {
              failedPosts += 1;
            },
          ),
        );
      }
      await Promise.all(posts);
      return { sentAt, start, failedPosts, seconds: (Date.now() - start) / 1000 };
    };
    const answered = () => telegram.sent.filter((m) => m.token === BOT_TOKEN).length;
    /** Waits for `expected` answers, then a little longer, so that a late duplicate is counted too. */
    const drain = async (expected: number) => {
      const deadline = Date.now() + DRAIN_MS;
      while (answered() < expected && Date.now() < deadline) await sleep(100);
      await sleep(SETTLE_MS);
    };

    // A process that has run for a while (its code compiled by V8, its pools open): warm it up first.
    if (WARMUP > 0) {
      await offer(0, WARMUP, Math.min(rate, WARMUP_RATE));
      await drain(WARMUP);
    }
    // BENCH_ANALYZE=1: statistics as autovacuum would have taken them by now (this machine's server
    // runs none), so the measured phase is planned as on a production database.
    if (process.env.BENCH_ANALYZE) await analyze(scratch.url);
    const total = rate * SECONDS;
    const { sentAt, start, failedPosts, seconds: offeredSeconds } = await offer(WARMUP, total, rate);
    await drain(WARMUP + total);

    const latencies: number[] = [];
    const answers = new Map<string, number>();
    /** Per chat, the number of the last message answered: an answer to an earlier one is out of order. */
    const lastInChat = new Map<string, number>();
    let outOfOrder = 0;
    let last = start;
    for (const call of telegram.callsOf('sendMessage', BOT_TOKEN)) {
      const text = String(call.params.text ?? '').replace(/^Echo: /, '');
      const at = sentAt.get(text);
      if (at === undefined) continue;
      const seen = answers.get(text) ?? 0;
      answers.set(text, seen + 1);
      if (seen > 0) continue;
      latencies.push(call.at.getTime() - at);
      last = Math.max(last, call.at.getTime());
      const chat = String(call.params.chat_id);
      const number = Number(text.slice(1));
      if (number < (lastInChat.get(chat) ?? -1)) outOfOrder += 1;
      else lastInChat.set(chat, number);
    }
    latencies.sort((a, b) => a - b);
    const done = answers.size;
    const duplicates = [...answers.values()].reduce((sum, count) => sum + count - 1, 0);
    const throughput = done / ((last - start) / 1000);
    return (
      `e2e (${SPLIT ? `web + ${WORKERS} worker process(es)` : 'one process'}): offered ${rate} msg/s for ${offeredSeconds.toFixed(1)} s across ${CHATS} chats after ${WARMUP} warm-up messages: sent ${total}` +
      ` (${failedPosts} failed posts), answered ${done} (${duplicates} duplicate, ${total - done} unanswered,` +
      ` ${outOfOrder} out of order), ${throughput.toFixed(0)} msg/s answered;` +
      ` webhook-to-sendMessage p50 ${percentile(latencies, 50)} ms p99 ${percentile(latencies, 99)} ms;` +
      ` max RSS ${[platform, ...workers].map((p) => `${(p.maxRss() / 2 ** 20).toFixed(0)} MB`).join(' / ')}`
    );
  } finally {
    await platform.stop();
    for (const worker of workers) await worker.stop();
    await Promise.all([telegram.stop(), anthropic.stop()]);
    await scratch.drop();
  }
}

for (const rate of RATES) process.stdout.write(`${await run(rate)}\n`);
process.exit(0);
