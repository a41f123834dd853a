import { ConfigError, parseConfig } from './config';
import { migrateDatabase } from './db/migrate';
import { type LoadedConfig, withDevSecrets } from './dev-secrets';
import { usePlainProcessEnv } from './plain-env';
import { createServices, type Services } from './services';

export interface Booted extends LoadedConfig {
  services: Services;
}

/**
 * Loads the configuration, opens the database and Redis, applies migrations. A configuration problem
 * ends the process with one line per problem, each naming its variable, and nothing else.
 */
export async function boot(
  role: string,
  env: Record<string, string | undefined> = process.env,
): Promise<Booted> {
  let loaded: LoadedConfig;
  try {
    loaded = withDevSecrets(parseConfig(env));
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`Cannot start ${role}. ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  if (env === process.env) usePlainProcessEnv();
  const services = await createServices(loaded.config);
  const { config, logger } = services;
  if (config.database.migrateOnStart) {
    await migrateDatabase(services.database);
  }
  logger.info(
    {
      role,
      env: config.env,
      db: services.database.driver,
      redis: services.redis.mode,
      jobs: config.jobs.engine,
      telegramDelivery: config.telegram.webhookBaseUrl ? 'webhook' : 'polling',
    },
    'booted',
  );
  if (services.redis.mode === 'memory') {
    logger.warn(
      'REDIS_URL and UPSTASH_REDIS_REST_URL are unset: rate limits are kept in memory, per process',
    );
  }
  return { ...loaded, services };
}

export function onShutdown(signals: NodeJS.Signals[], stop: () => Promise<void>): void {
  let stopping = false;
  for (const signal of signals) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      // Heroku sends SIGKILL 30 s after SIGTERM; finish well before that.
      const force = setTimeout(() => process.exit(1), 25_000);
      force.unref();
      stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}
