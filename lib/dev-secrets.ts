import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { type Config, ConfigError, MasterKeySchema, type ReadyConfig } from './config';

const DevSecretsSchema = z.object({
  encryptionMasterKey: MasterKeySchema,
  adminApiKey: z.string().min(32),
});
export type DevSecrets = z.infer<typeof DevSecretsSchema>;

export const DEV_SECRETS_FILE = 'dev-secrets.json';

/**
 * Development only: the master key and admin key are generated once into `<dataDir>/dev-secrets.json`
 * (mode 0600) and reused on every start, so stored credentials stay readable across restarts.
 */
export function readOrCreateDevSecrets(dataDir: string): { secrets: DevSecrets; created: boolean } {
  const file = join(dataDir, DEV_SECRETS_FILE);
  let raw: string | undefined;
  try {
    raw = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (raw !== undefined) {
    const parsed = DevSecretsSchema.safeParse(JSON.parse(raw));
    if (!parsed.success) {
      throw new ConfigError([`${file}: not a valid development secrets file; fix or delete it`]);
    }
    return { secrets: parsed.data, created: false };
  }
  const secrets: DevSecrets = {
    encryptionMasterKey: randomBytes(32).toString('base64'),
    adminApiKey: `oc_admin_${randomBytes(24).toString('base64url')}`,
  };
  mkdirSync(dataDir, { recursive: true });
  // 'wx' fails if another process created the file meanwhile: then read theirs.
  try {
    writeFileSync(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return readOrCreateDevSecrets(dataDir);
    throw error;
  }
  return { secrets, created: true };
}

export interface LoadedConfig {
  config: ReadyConfig;
  /** Set when development secrets filled in a missing admin key: the caller prints it once at start. */
  generatedAdminKey: string | undefined;
}

/** Fills missing secrets from `.data/` outside production; production never gets here without them. */
export function withDevSecrets(config: Config): LoadedConfig {
  const { encryptionMasterKey, adminApiKey } = config.secrets;
  if (encryptionMasterKey && adminApiKey) {
    return {
      config: { ...config, secrets: { ...config.secrets, encryptionMasterKey, adminApiKey } },
      generatedAdminKey: undefined,
    };
  }
  if (config.isProduction) {
    throw new ConfigError(['ENCRYPTION_MASTER_KEY and ADMIN_API_KEY are required when NODE_ENV=production']);
  }
  const { secrets } = readOrCreateDevSecrets(config.dataDir);
  return {
    config: {
      ...config,
      secrets: {
        ...config.secrets,
        encryptionMasterKey: encryptionMasterKey ?? secrets.encryptionMasterKey,
        adminApiKey: adminApiKey ?? secrets.adminApiKey,
      },
    },
    generatedAdminKey: adminApiKey ? undefined : secrets.adminApiKey,
  };
}
