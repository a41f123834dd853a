import { loadConfig, reasonOf, startupProblem } from '../boot';
import { createLogger } from '../logger';
import { createDatabase, describeDatabase, pgliteDirFor } from './client';
import { migrateDatabase } from './migrate';

/** `npm run migrate` (and Heroku's release phase): applies migrations to the configured database. */
const role = 'the migrations';
const config = loadConfig(role, process.env);
const logger = createLogger(config);
const where = describeDatabase(config.database.url, pgliteDirFor(config.dataDir));
const handle = await createDatabase({
  url: config.database.url,
  pgliteDir: pgliteDirFor(config.dataDir),
  poolSize: 1,
}).catch((error: unknown) => startupProblem(role, `Could not open ${where}: ${reasonOf(error)}`));
try {
  await migrateDatabase(handle);
  logger.info({ driver: handle.driver }, 'migrations applied');
} catch (error) {
  process.stderr.write(`Migrations failed on ${where}: ${reasonOf(error)}\n`);
  process.exitCode = 1;
} finally {
  await handle.close();
}
