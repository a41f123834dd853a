import type { DatabaseDriver, JobsEngine, RedisMode } from './config';
import type { Services } from './services';
import { withTimeout } from './timeout';
import { VERSION } from './version';

export interface PartHealth {
  ok: boolean;
  error?: string;
}

export interface HealthReport {
  status: 'ok' | 'degraded';
  db: PartHealth & { driver: DatabaseDriver };
  /** Rate limits fail open while Redis is down (see lib/ratelimit/limiter.ts). */
  redis: PartHealth & { mode: RedisMode; rateLimits: 'enforced' | 'failing_open' };
  jobs: PartHealth & { engine: JobsEngine };
  version: string;
}

/** Checks the jobs engine; the engine in use registers it (the embedded executor reports its loop). */
export type JobsProbe = () => Promise<PartHealth>;

const CHECK_TIMEOUT_MS = 2_000;
const NO_ANSWER = `no answer within ${CHECK_TIMEOUT_MS} ms`;

/** Where a part failed, for the logs: /health itself is public, and says only `failed (CODE)`. */
export type HealthFailureLog = (part: 'db' | 'redis' | 'jobs', error: unknown) => void;

/**
 * A failure as /health shows it to anyone: a driver's message can name internal hosts, ports and
 * database users, so the public gets the error's code (ECONNREFUSED, 57P01) or the timeout, and
 * the message goes to the logs.
 */
function publicReason(error: unknown): string {
  if (error instanceof Error && error.message === NO_ANSWER) return NO_ANSWER;
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^[A-Z0-9_]{1,32}$/.test(code)
    ? `failed (${code})`
    : 'failed: see the logs';
}

/** A part that only has to answer: healthy once it has. */
async function answered(ping: Promise<unknown>): Promise<PartHealth> {
  await ping;
  return { ok: true };
}

async function probe(
  part: 'db' | 'redis' | 'jobs',
  check: () => Promise<PartHealth>,
  log?: HealthFailureLog,
): Promise<PartHealth> {
  try {
    return await withTimeout(check(), CHECK_TIMEOUT_MS, NO_ANSWER);
  } catch (error) {
    log?.(part, error);
    return { ok: false, error: publicReason(error) };
  }
}

export async function checkHealth(
  services: Pick<Services, 'config' | 'database' | 'redis'>,
  jobsProbe?: JobsProbe,
  log?: HealthFailureLog,
): Promise<HealthReport> {
  const [db, redis, jobs] = await Promise.all([
    probe('db', () => answered(services.database.ping()), log),
    probe('redis', () => answered(services.redis.ping(CHECK_TIMEOUT_MS)), log),
    // Bounded and caught like the others: the web process's probe reads the database.
    jobsProbe ? probe('jobs', jobsProbe, log) : Promise.resolve<PartHealth>({ ok: true }),
  ]);
  return {
    status: db.ok && redis.ok && jobs.ok ? 'ok' : 'degraded',
    db: { driver: services.database.driver, ...db },
    redis: { mode: services.redis.mode, ...redis, rateLimits: redis.ok ? 'enforced' : 'failing_open' },
    jobs: { engine: services.config.jobs.engine, ...jobs },
    version: VERSION,
  };
}
