import { parseConfig } from '../config';
import { createLogger } from '../logger';
import { createDatabase, pgliteDirFor } from './client';
import { migrateDatabase } from './migrate';

/** `npm run migrate` (and Heroku's release phase): applies migrations to the configured database. */
const config = parseConfig(process.env);
const logger = createLogger(config);
const handle = await createDatabase({
  url: config.database.url,
  pgliteDir: pgliteDirFor(config.dataDir),
  poolSize: 1,
});
try {
  await migrateDatabase(handle);
  logger.info({ driver: handle.driver }, 'migrations applied');
} catch (error) {
  logger.error({ err: error }, 'migrations failed');
  process.exitCode = 1;
} finally {
  await handle.close();
}
