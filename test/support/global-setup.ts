import { Socket } from 'node:net';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL of the real PostgreSQL, or '' when it is not reachable. */
    postgresAdminUrl: string;
    /** URL of the real Redis, or '' when it is not reachable. */
    redisUrl: string;
  }
}

function reachable(url: string, defaultPort: number): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000);
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
    socket.connect(Number(port || defaultPort), hostname);
  });
}

/**
 * Finds the real PostgreSQL and Redis (TEST_DATABASE_URL / TEST_REDIS_URL, else the local defaults).
 * With TEST_REQUIRE_SERVICES=1 (CI) a missing one fails the run instead of skipping its suites.
 */
export default async function setup(project: TestProject) {
  const postgresUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const [hasPostgres, hasRedis] = await Promise.all([
    reachable(postgresUrl, 5432),
    reachable(redisUrl, 6379),
  ]);
  if (process.env.TEST_REQUIRE_SERVICES === '1') {
    const missing = [
      !hasPostgres && `PostgreSQL at ${postgresUrl}`,
      !hasRedis && `Redis at ${redisUrl}`,
    ].filter(Boolean);
    if (missing.length > 0)
      throw new Error(`TEST_REQUIRE_SERVICES=1 but not reachable: ${missing.join(', ')}`);
  }
  project.provide('postgresAdminUrl', hasPostgres ? postgresUrl : '');
  project.provide('redisUrl', hasRedis ? redisUrl : '');
}
