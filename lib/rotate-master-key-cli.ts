import { loadConfig, openDatabaseOrExit } from './boot';
import { readArgs } from './cli-args';
import { createKeyring } from './crypto';
import { rotateMasterKey } from './key-rotation';
import { createLogger } from './logger';

/**
 * `npm run rotate-master-key`: with the new key in ENCRYPTION_MASTER_KEY and the old one in
 * ENCRYPTION_MASTER_KEY_PREVIOUS, re-encrypts every stored secret. Keep both set on the running
 * processes until it reports done, then remove ENCRYPTION_MASTER_KEY_PREVIOUS.
 */
const role = 'the master key rotation';
readArgs(role, 'npm run rotate-master-key', [], process.argv.slice(2));
const config = loadConfig(role, process.env);
const logger = createLogger(config);
if (!config.secrets.encryptionMasterKey || !config.secrets.encryptionMasterKeyPrevious) {
  process.stderr.write('Set ENCRYPTION_MASTER_KEY (new key) and ENCRYPTION_MASTER_KEY_PREVIOUS (old key).\n');
  process.exit(1);
}
const handle = await openDatabaseOrExit(role, config, 2);
try {
  const report = await rotateMasterKey(
    handle.db,
    createKeyring(config.secrets.encryptionMasterKey, config.secrets.encryptionMasterKeyPrevious),
  );
  logger.info(report, 'master key rotation done: every secret is under the new key');
} catch (error) {
  logger.error({ err: error }, 'master key rotation failed; run it again to resume');
  process.exitCode = 1;
} finally {
  await handle.close();
}
