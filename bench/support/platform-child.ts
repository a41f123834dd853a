/**
 * The process under load for bench/ingress.ts and bench/e2e.ts, forked with the tsx loader so the load
 * generator never shares its event loop. BENCH_MODE:
 * - `bare`: a Hono route that only parses the JSON body (the baseline);
 * - `web`: the platform's web process (`--web-only`): ingress stores updates and sends events;
 * - `full`: web and worker in one process (`npm start`): every update is answered;
 * - `worker`: the worker process alone (Heroku's `worker`), beside a `web` one.
 * It seeds one customer with one running agent (open DMs), then reports `{ port, agentId, secret }`
 * over IPC, and its RSS every 250 ms.
 */
import { serve } from '@hono/node-server';
import { eq } from 'drizzle-orm';
import { Hono } from 'hono';
import { createApp } from '../../api/app';
import { sendEventVia } from '../../functions/client';
import { createJobsRuntime } from '../../functions/runtime';
import { createAgent } from '../../lib/agents';
import { parseConfig } from '../../lib/config';
import { setCredential } from '../../lib/credentials';
import { createCustomer } from '../../lib/customers';
import { migrateDatabase } from '../../lib/db/migrate';
import { agents, credentials } from '../../lib/db/schema';
import { withDevSecrets } from '../../lib/dev-secrets';
import { rotateWebhookSecretToken } from '../../lib/lifecycle/transitions';
import { usePlainProcessEnv } from '../../lib/plain-env';
import { createServices } from '../../lib/services';

export interface ChildReady {
  port: number;
  agentId: string;
  secret: string;
}

const mode = process.env.BENCH_MODE ?? 'web';
const send = (message: unknown) => process.send?.(message);

async function bare(): Promise<ChildReady> {
  const app = new Hono().post('/telegram/:agentId', async (c) => {
    await c.req.json();
    return c.json({ ok: true });
  });
  const port = await listen(app.fetch);
  return { port, agentId: '00000000-0000-4000-8000-000000000000', secret: 'bare' };
}

async function platform(): Promise<ChildReady> {
  usePlainProcessEnv(); // as lib/boot.ts does for the real entry points
  const config = withDevSecrets(
    parseConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL, // unset: the platform's own default (info)
      JOBS_ENGINE: 'embedded',
      DATABASE_URL: process.env.BENCH_PLATFORM_DATABASE_URL,
      DATABASE_POOL_SIZE: '10',
      REDIS_URL: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
      TELEGRAM_API_ROOT: process.env.TELEGRAM_API_ROOT,
      ANTHROPIC_BASE_URL: process.env.ANTHROPIC_BASE_URL,
      ENCRYPTION_MASTER_KEY: Buffer.alloc(32, 9).toString('base64'),
      ADMIN_API_KEY: 'oc_admin_bench_0123456789abcdefghijklmnopqrstuvwxyz',
    }),
  ).config;
  const services = await createServices(config);
  await migrateDatabase(services.database);
  if (mode === 'worker') {
    // The worker process of a split deployment: runs the jobs of the database the web process seeded.
    await createJobsRuntime(services).startWorker();
    return { port: 0, agentId: '', secret: '' };
  }
  const { db, keyring, models } = services;
  const system = { actor: { type: 'system' as const }, requestId: undefined, ip: undefined };
  const { customer } = await createCustomer(db, system, keyring, {
    name: 'bench',
    plan: 'enterprise',
    limits: { messagesPerDay: 10_000_000 },
  });
  const { agent } = await createAgent(db, system, customer.id, models, {
    name: 'Bench',
    telegramDmPolicy: 'open',
  } as never);
  const token = process.env.BENCH_BOT_TOKEN ?? '';
  const botId = Number(token.split(':')[0]);
  const common = { customerId: customer.id, agentId: agent.id };
  await setCredential(db, system, keyring, { ...common, kind: 'telegram', secret: token });
  await setCredential(db, system, keyring, {
    ...common,
    kind: 'claude',
    secret: process.env.BENCH_CLAUDE_KEY ?? '',
  });
  await db
    .update(credentials)
    .set({ validationStatus: 'valid', validatedAt: new Date() })
    .where(eq(credentials.agentId, agent.id));
  const [row] = await db
    .update(agents)
    .set({
      status: 'running',
      telegramBotId: botId,
      telegramBotUsername: 'bench_bot',
      telegramDelivery: 'webhook',
    })
    .where(eq(agents.id, agent.id))
    .returning();
  if (!row) throw new Error('agent not seeded');
  const secret = await rotateWebhookSecretToken(db, keyring, row);

  const runtime = createJobsRuntime(services);
  const app = createApp(services, {
    sendEvent: sendEventVia(runtime.inngest),
    eventsStatement: runtime.executor?.statement,
  });
  if (mode === 'full') await runtime.startWorker();
  const port = await listen(app.fetch);
  return { port, agentId: agent.id, secret };
}

function listen(fetch: (request: Request) => Response | Promise<Response>): Promise<number> {
  return new Promise((resolve) => {
    serve({ fetch, port: 0, hostname: '127.0.0.1' }, (info) => resolve(info.port));
  });
}

// BENCH_COUNT_QUERIES=1: report every SQL statement sent, by its first words, when the parent stops us.
const queryCounts = new Map<string, number>();
if (process.env.BENCH_COUNT_QUERIES) {
  const pg = (await import('pg')).default;
  const original = pg.Client.prototype.query;
  pg.Client.prototype.query = function (this: unknown, ...args: unknown[]) {
    const first = args[0] as string | { text?: string };
    const text = typeof first === 'string' ? first : (first?.text ?? '');
    const key = text.replace(/\s+/g, ' ').slice(0, 60);
    queryCounts.set(key, (queryCounts.get(key) ?? 0) + 1);
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original;
  process.on('SIGINT', () => {
    const sorted = [...queryCounts.entries()].sort((a, b) => b[1] - a[1]);
    for (const [key, n] of sorted) process.stderr.write(`${n}\t${key}\n`);
    process.exit(0);
  });
}

const ready = await (mode === 'bare' ? bare() : platform());
send({ ready });
setInterval(() => send({ rss: process.memoryUsage().rss }), 250).unref();
process.on('disconnect', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
