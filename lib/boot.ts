import { join } from 'node:path';
import { type Config, ConfigError, parseConfig } from './config';
import { createDatabase, type DatabaseHandle, describeDatabase, pgliteDirFor } from './db/client';
import { migrateDatabase, pendingMigrations } from './db/migrate';
import { DEV_SECRETS_FILE, type LoadedConfig, withDevSecrets } from './dev-secrets';
import { judgeMasterKey, noReadableSecretsProblem, storedKeyVersions } from './master-key-check';
import { usePlainProcessEnv } from './plain-env';
import { createServices, type Services } from './services';
import { withTimeout } from './timeout';

export interface Booted extends LoadedConfig {
  services: Services;
}

/**
 * Loads the configuration, opens the database and Redis, applies migrations. A configuration problem,
 * or a database that does not open, answer or migrate, ends the process with one line naming the
 * variable to look at (`startupProblem`). Redis may be down: rate limits fail open until it is back.
 */
export async function boot(
  role: string,
  env: Record<string, string | undefined> = process.env,
): Promise<Booted> {
  const parsed = loadConfig(role, env);
  const loaded = orExit(
    role,
    () => withDevSecrets(parsed),
    (error) => `Could not keep the development secrets in DATA_DIR (${parsed.dataDir}): ${reasonOf(error)}`,
  );
  if (env === process.env) usePlainProcessEnv();
  const { config } = loaded;
  const where = describeDatabase(config);
  let services: Services;
  try {
    services = await createServices(config);
  } catch (error) {
    return startupProblem(role, `Could not open ${where}: ${reasonOf(error)}`);
  }
  await answerOrExit(role, where, services.database, services);
  if (config.database.migrateOnStart) {
    try {
      await migrateDatabase(services.database);
    } catch (error) {
      return startupProblem(role, `Migrations failed on ${where}: ${reasonOf(error)}`, services);
    }
  } else {
    await schemaCurrentOrExit(role, where, services);
  }
  const keyFrom = parsed.secrets.encryptionMasterKey
    ? 'ENCRYPTION_MASTER_KEY'
    : `The development master key in ${join(parsed.dataDir, DEV_SECRETS_FILE)}`;
  await masterKeyReadsOrExit(role, where, services, keyFrom);
  const { logger } = services;
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

/** MIGRATE_ON_START=false: a database without this release's migrations ends the process, saying what to run. */
async function schemaCurrentOrExit(role: string, where: string, services: Services): Promise<void> {
  let pending: string[];
  try {
    pending = await pendingMigrations(services.database);
  } catch (error) {
    return startupProblem(
      role,
      `Could not read the applied migrations of ${where}: ${reasonOf(error)}`,
      services,
    );
  }
  if (pending.length === 0) return;
  const count = pending.length === 1 ? '1 migration' : `${pending.length} migrations`;
  const database = `${where.charAt(0).toUpperCase()}${where.slice(1)}`;
  return startupProblem(
    role,
    `${database} lacks ${count} of this release (the latest: ${pending.at(-1)}) and ` +
      'MIGRATE_ON_START=false: run `npm run migrate` first, or unset MIGRATE_ON_START.',
    services,
  );
}

/**
 * A master key that decrypts none of the stored secrets would leave every agent failing run by run
 * while /health says ok: the process ends instead. Some unreadable secrets (a rotation finished
 * without its old key) only warn: the other agents go on.
 */
async function masterKeyReadsOrExit(
  role: string,
  where: string,
  services: Services,
  keyFrom: string,
): Promise<void> {
  let verdict: ReturnType<typeof judgeMasterKey>;
  try {
    verdict = judgeMasterKey(services.keyring, await storedKeyVersions(services.db));
  } catch (error) {
    return startupProblem(
      role,
      `Could not read the stored secrets of ${where}: ${reasonOf(error)}`,
      services,
    );
  }
  if (verdict.kind === 'none-readable') {
    return startupProblem(role, noReadableSecretsProblem(services.keyring, verdict, keyFrom), services);
  }
  if (verdict.kind === 'some-unreadable') {
    services.logger.warn(
      { unreadable: verdict.unreadable, stored: verdict.total, keyVersions: verdict.versions },
      'stored secrets that neither ENCRYPTION_MASTER_KEY nor ENCRYPTION_MASTER_KEY_PREVIOUS decrypts: their agents cannot run until that key is set as ENCRYPTION_MASTER_KEY_PREVIOUS (then rotate) or their credentials are PUT again',
    );
  }
}

/** How long a starting process waits for the database's first answer (an unroutable host never refuses). */
const DATABASE_ANSWER_MS = 15_000;

/** The configuration, or the end of the process with one line per problem, each naming its variable. */
export function loadConfig(role: string, env: Record<string, string | undefined>): Config {
  return orExit(role, () => parseConfig(env));
}

/**
 * `work`'s result, or the end of the process: a ConfigError with its lines, another error with the
 * line `describe` makes of it (without `describe`, it is thrown on).
 */
function orExit<T>(role: string, work: () => T, describe?: (error: unknown) => string): T {
  try {
    return work();
  } catch (error) {
    let problem: string;
    if (error instanceof ConfigError) problem = error.message;
    else if (describe) problem = describe(error);
    else throw error;
    process.stderr.write(`Cannot start ${role}. ${problem}\n`);
    process.exit(1);
  }
}

/**
 * Ends a starting process that cannot go on: one line on stderr (no stack: the operator reads it in
 * the dyno's log), what it opened closed (within 5 s), exit code 1.
 */
export async function startupProblem(
  role: string,
  problem: string,
  opened?: { close(): Promise<void> },
): Promise<never> {
  process.stderr.write(`Cannot start ${role}. ${problem}\n`);
  await withTimeout(opened?.close() ?? Promise.resolve(), 5_000, 'close timed out').catch(() => {});
  process.exit(1);
}

/** A CLI's database (migrate, rotate-master-key), or the end of the process naming the one that did not open. */
export async function openDatabaseOrExit(
  role: string,
  config: Config,
  poolSize: number,
): Promise<DatabaseHandle> {
  let handle: DatabaseHandle;
  try {
    handle = await createDatabase({
      url: config.database.url,
      pgliteDir: pgliteDirFor(config.dataDir),
      poolSize,
      queryTimeoutMs: config.database.queryTimeoutMs,
    });
  } catch (error) {
    return startupProblem(role, `Could not open ${describeDatabase(config)}: ${reasonOf(error)}`);
  }
  await answerOrExit(role, describeDatabase(config), handle, handle);
  return handle;
}

/** A database that takes the connection and never answers must not hang a process: it ends, naming it. */
async function answerOrExit(
  role: string,
  where: string,
  database: { ping(): Promise<unknown> },
  opened: { close(): Promise<void> },
): Promise<void> {
  try {
    await withTimeout(database.ping(), DATABASE_ANSWER_MS, `no answer within ${DATABASE_ANSWER_MS / 1000} s`);
  } catch (error) {
    await startupProblem(role, `No answer from ${where}: ${reasonOf(error)}`, opened);
  }
}

/** The root cause's message: drizzle wraps the driver's error ("Failed query: …") in its own. */
export function reasonOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return reasonOf(error.errors[0]);
  if (error instanceof Error && error.cause instanceof Error) return reasonOf(error.cause);
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

export function onShutdown(signals: NodeJS.Signals[], stop: () => Promise<void>): void {
  let stopping = false;
  for (const signal of signals) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      // Heroku sends SIGKILL 30 s after SIGTERM; finish well before that.
      const force = setTimeout(() => {
        process.stderr.write(`${signal}: the shutdown did not finish within 25 s; exiting now\n`);
        process.exit(1);
      }, 25_000);
      force.unref();
      stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}
