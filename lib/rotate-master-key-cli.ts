import { loadConfig, openDatabaseOrExit, reasonOf } from './boot';
import { readArgs } from './cli-args';
import { createKeyring } from './crypto';
import { RotationError, rotateMasterKey } from './key-rotation';

/**
 * `npm run rotate-master-key`: with the new key in ENCRYPTION_MASTER_KEY and the old one in
 * ENCRYPTION_MASTER_KEY_PREVIOUS, re-encrypts every stored secret. Keep both set on the running
 * processes until it reports done, then remove ENCRYPTION_MASTER_KEY_PREVIOUS. It is run by hand
 * (`heroku run`): the outcome is one plain line, whatever LOG_LEVEL says.
 */
const role = 'the master key rotation';
const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;
readArgs(role, 'npm run rotate-master-key', [], process.argv.slice(2));
const config = loadConfig(role, process.env);
const { encryptionMasterKey, encryptionMasterKeyPrevious } = config.secrets;
if (!encryptionMasterKey || !encryptionMasterKeyPrevious) {
  process.stderr.write(
    `Cannot start ${role}. Set ENCRYPTION_MASTER_KEY (the new key) and ENCRYPTION_MASTER_KEY_PREVIOUS (the old key).\n`,
  );
  process.exit(1);
}
const handle = await openDatabaseOrExit(role, config, 2);
try {
  const keyring = createKeyring(encryptionMasterKey, encryptionMasterKeyPrevious);
  const report = await rotateMasterKey(handle.db, keyring);
  process.stdout.write(
    `Master key rotation done: ${count(report.credentials, 'credential')} and ` +
      `${count(report.webhookSecrets, 'webhook secret')} re-encrypted; every stored secret is under ENCRYPTION_MASTER_KEY (version ` +
      `${keyring.current.version}). Remove ENCRYPTION_MASTER_KEY_PREVIOUS from every process.\n`,
  );
} catch (error) {
  // A RotationError says what to change first; anything else (the database went away) is resumable.
  const problem =
    error instanceof RotationError
      ? error.message
      : `${reasonOf(error)}. What was re-encrypted stays so: run it again to resume.`;
  process.stderr.write(`Cannot finish ${role}. ${problem}\n`);
  process.exitCode = 1;
} finally {
  await handle.close();
}
