import type { ReadyConfig } from './config';
import { createKeyring, type Keyring } from './crypto';
import { createDatabase, type Database, type DatabaseHandle, pgliteDirFor } from './db/client';
import { createLogger, type Logger } from './logger';
import { createModelCatalog, type ModelCatalog } from './models';
import { createRateLimiter, type RateLimiter } from './ratelimit/limiter';
import { createRedis, type RedisHandle } from './redis';

/**
 * Everything a request handler or a function needs, built once at boot and handed down
 * (`c.get('services')` in routes). Nothing here is a module singleton, so tests build their own.
 */
export interface Services {
  config: ReadyConfig;
  logger: Logger;
  database: DatabaseHandle;
  db: Database;
  redis: RedisHandle;
  /** Master keys for secrets at rest (current, and the previous one during a rotation). */
  keyring: Keyring;
  models: ModelCatalog;
  /** API requests per customer (and admin) per hour; Telegram messages per customer per day. */
  limits: { api: RateLimiter; messages: RateLimiter };
  close(): Promise<void>;
}

export interface ServiceOverrides {
  logger?: Logger;
  /** A database the caller already opened (tests); it is closed with the services. */
  database?: DatabaseHandle;
  redis?: RedisHandle;
  /** Rate-limit key prefix (tests sharing one Redis keep apart with their own). */
  limitPrefix?: string;
}

export async function createServices(
  config: ReadyConfig,
  overrides: ServiceOverrides = {},
): Promise<Services> {
  const logger = overrides.logger ?? createLogger(config);
  const database =
    overrides.database ??
    (await createDatabase({
      url: config.database.url,
      pgliteDir: pgliteDirFor(config.dataDir),
      poolSize: config.database.poolSize,
      queryTimeoutMs: config.database.queryTimeoutMs,
      namedStatements: config.database.namedStatements,
    }));
  const redis = overrides.redis ?? createRedis(config);
  return {
    config,
    logger,
    database,
    db: database.db,
    redis,
    keyring: createKeyring(config.secrets.encryptionMasterKey, config.secrets.encryptionMasterKeyPrevious),
    models: createModelCatalog(config.allowedModels),
    limits: {
      api: createRateLimiter({
        redis,
        kind: 'api',
        logger,
        ...(overrides.limitPrefix ? { prefix: `${overrides.limitPrefix}:api` } : {}),
      }),
      messages: createRateLimiter({
        redis,
        kind: 'messages',
        logger,
        ...(overrides.limitPrefix ? { prefix: `${overrides.limitPrefix}:messages` } : {}),
      }),
    },
    async close() {
      await Promise.allSettled([redis.close(), database.close()]);
    },
  };
}
