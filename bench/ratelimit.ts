/**
 * Overhead of the API rate limit per request: the same authenticated route with no limiter, with the
 * in-memory store, and with the local Redis over TCP. Prints one result line per case:
 *   ratelimit store=<none|memory|redis> requests=N p50=…ms p99=…ms added_p50=…ms
 * Run: npm run bench:ratelimit [requests]
 */
import { Redis as IORedis } from 'ioredis';
import { createApp } from '../api/app';
import { parseConfig } from '../lib/config';
import { createCustomer } from '../lib/customers';
import { createDatabase } from '../lib/db/client';
import { migrateDatabase } from '../lib/db/migrate';
import { withDevSecrets } from '../lib/dev-secrets';
import type { RateLimiter } from '../lib/ratelimit/limiter';
import { createRedis } from '../lib/redis';
import { createServices } from '../lib/services';
import { percentile } from './support/percentile';

const requests = Number(process.argv[2] ?? 2000);
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

const noLimit: RateLimiter = {
  async limit(_id, limit) {
    return { success: true, limit, remaining: limit, reset: Date.now() + 3_600_000, failedOpen: false };
  },
  async usage(_id, limit) {
    return { used: 0, remaining: limit, reset: Date.now(), failedOpen: false };
  },
};

async function redisAnswers(): Promise<boolean> {
  const client = new IORedis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 500 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function measure(store: 'none' | 'memory' | 'redis'): Promise<number[]> {
  const config = withDevSecrets(
    parseConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      ENCRYPTION_MASTER_KEY: Buffer.alloc(32, 1).toString('base64'),
      ADMIN_API_KEY: 'bench-admin-key-0123456789abcdefghijklmnop',
    }),
  ).config;
  const database = await createDatabase({ pgliteDir: 'memory://' });
  await migrateDatabase(database);
  const redis =
    store === 'redis'
      ? createRedis({ redis: { mode: 'tcp', url: redisUrl } })
      : createRedis({ redis: { mode: 'memory' } });
  const services = await createServices(config, { database, redis, limitPrefix: `bench:${Date.now()}` });
  if (store === 'none') services.limits.api = noLimit;
  const { apiKey } = await createCustomer(
    services.db,
    { actor: { type: 'system' }, requestId: undefined, ip: undefined },
    services.keyring,
    {
      name: 'bench',
      plan: 'enterprise',
      limits: { apiRequestsPerHour: 10_000_000 },
    } as never,
  );
  const app = createApp(services);
  const headers = { authorization: `Bearer ${apiKey}` };
  for (let index = 0; index < 200; index += 1) await app.request('/api/v1/webhook', { headers });
  const samples: number[] = [];
  for (let index = 0; index < requests; index += 1) {
    const started = performance.now();
    const res = await app.request('/api/v1/webhook', { headers });
    samples.push(performance.now() - started);
    if (res.status !== 200) throw new Error(`unexpected ${res.status}`);
  }
  await services.close();
  return samples.sort((a, b) => a - b);
}

const baseline = await measure('none');
const base50 = percentile(baseline, 50);
const line = (store: string, samples: number[]) =>
  console.log(
    `ratelimit store=${store} requests=${requests} p50=${percentile(samples, 50).toFixed(3)}ms p99=${percentile(samples, 99).toFixed(3)}ms added_p50=${(percentile(samples, 50) - base50).toFixed(3)}ms`,
  );
line('none', baseline);
line('memory', await measure('memory'));
if (await redisAnswers()) line('redis', await measure('redis'));
else console.log(`ratelimit store=redis skipped: no Redis at ${redisUrl}`);
process.exit(0);
