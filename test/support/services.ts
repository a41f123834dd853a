import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { parseConfig, type ReadyConfig } from '../../lib/config';
import type { DatabaseHandle } from '../../lib/db/client';
import { withDevSecrets } from '../../lib/dev-secrets';
import { createLogger, type Logger } from '../../lib/logger';
import type { RedisHandle } from '../../lib/redis';
import { createServices, type Services } from '../../lib/services';

export const TEST_MASTER_KEY = Buffer.alloc(32, 7).toString('base64');
export const TEST_ADMIN_KEY = 'oc_admin_test_0123456789abcdefghijklmnopqrstuvwxyz';

/** A configuration as production would have it, with test secrets, plus any variables given. */
export function testConfig(env: Record<string, string | undefined> = {}): ReadyConfig {
  return withDevSecrets(
    parseConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      ENCRYPTION_MASTER_KEY: TEST_MASTER_KEY,
      ADMIN_API_KEY: TEST_ADMIN_KEY,
      ...env,
    }),
  ).config;
}

/** A logger whose lines are kept in `lines` (parsed JSON), to assert on what gets logged. */
export function captureLogger(level: ReadyConfig['logLevel'] = 'info'): {
  logger: Logger;
  lines: Record<string, unknown>[];
} {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      callback();
    },
  });
  return { logger: createLogger({ logLevel: level, env: 'test' }, stream), lines };
}

export async function createTestServices(options: {
  database: DatabaseHandle;
  env?: Record<string, string | undefined>;
  logger?: Logger;
  redis?: RedisHandle;
}): Promise<Services> {
  const config = testConfig(options.env);
  return createServices(config, {
    database: options.database,
    // Rate-limit counters of one test never meet another's, on the real Redis or the in-memory one.
    limitPrefix: `test:${randomUUID()}`,
    logger: options.logger ?? createLogger(config),
    ...(options.redis ? { redis: options.redis } : {}),
  });
}
