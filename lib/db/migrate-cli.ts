import { loadConfig, openDatabaseOrExit, reasonOf } from '../boot';
import { readArgs } from '../cli-args';
import { createLogger } from '../logger';
import { describeDatabase } from './client';
import { migrateDatabase } from './migrate';

/** `npm run migrate` (and Heroku's release phase): applies migrations to the configured database. */
const role = 'the migrations';
readArgs(role, 'npm run migrate', [], process.argv.slice(2));
const config = loadConfig(role, process.env);
const logger = createLogger(config);
const where = describeDatabase(config);
const handle = await openDatabaseOrExit(role, config, 1);
try {
  await migrateDatabase(handle);
  logger.info({ driver: handle.driver }, 'migrations applied');
} catch (error) {
  process.stderr.write(`Migrations failed on ${where}: ${reasonOf(error)}\n`);
  process.exitCode = 1;
} finally {
  await handle.close();
}
