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

async function probe(check: () => Promise<unknown>): Promise<PartHealth> {
  try {
    await withTimeout(check(), CHECK_TIMEOUT_MS, `no answer within ${CHECK_TIMEOUT_MS} ms`);
    return { ok: true };
  } catch (error) {
    // The message of a driver error names the failure (ECONNREFUSED, timeout) but never a credential.
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

export async function checkHealth(
  services: Pick<Services, 'config' | 'database' | 'redis'>,
  jobsProbe?: JobsProbe,
): Promise<HealthReport> {
  const [db, redis, jobs] = await Promise.all([
    probe(() => services.database.ping()),
    probe(() => services.redis.ping(CHECK_TIMEOUT_MS)),
    jobsProbe ? jobsProbe() : Promise.resolve<PartHealth>({ ok: true }),
  ]);
  return {
    status: db.ok && redis.ok && jobs.ok ? 'ok' : 'degraded',
    db: { driver: services.database.driver, ...db },
    redis: { mode: services.redis.mode, ...redis, rateLimits: redis.ok ? 'enforced' : 'failing_open' },
    jobs: { engine: services.config.jobs.engine, ...jobs },
    version: VERSION,
  };
}
