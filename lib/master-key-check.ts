import { sql } from 'drizzle-orm';
import {
  credentialBinding,
  DecryptionError,
  decryptSecret,
  type EncryptedSecret,
  type Keyring,
  type SecretBinding,
  webhookSecretBinding,
} from './crypto';
import { type Queryable, selectRows } from './db/client';

export interface StoredKeyVersions {
  /** Stored secrets (credentials and customers' webhook secrets) by the master key version they are under. */
  byVersion: Map<number, number>;
  /** A few stored secrets of each version, to try the keyring's key of that version on. */
  samples: Map<number, StoredSecretSample[]>;
}

export interface StoredSecretSample {
  binding: SecretBinding;
  secret: EncryptedSecret;
}

/**
 * Samples tried per version. One is enough for a wrong key; more keep one damaged row from failing
 * the start-up of a right one.
 */
const SAMPLES_PER_VERSION = 3;

/**
 * How many stored secrets each master key version holds, and a few of each to trial-decrypt: one
 * pass over the secrets, counted and numbered per version.
 */
export async function storedKeyVersions(db: Queryable): Promise<StoredKeyVersions> {
  const sampled = await selectRows<{
    version: number;
    secrets: number;
    slot: 'credential' | 'current' | 'previous';
    customer_id: string;
    agent_id: string | null;
    kind: string | null;
    ciphertext: string;
    iv: string;
    auth_tag: string;
  }>(
    db,
    sql`select * from (
          select *, row_number() over (partition by version) as n,
            (count(*) over (partition by version))::int as secrets from (
            select key_version as version, 'credential' as slot, customer_id, agent_id::text, kind::text,
              ciphertext, iv, auth_tag from credentials
            union all select webhook_secret_key_version, 'current', id, null, null,
              webhook_secret_ciphertext, webhook_secret_iv, webhook_secret_auth_tag
              from customers where webhook_secret_ciphertext is not null
            union all select previous_webhook_secret_key_version, 'previous', id, null, null,
              previous_webhook_secret_ciphertext, previous_webhook_secret_iv, previous_webhook_secret_auth_tag
              from customers where previous_webhook_secret_ciphertext is not null
          ) stored
        ) numbered where n <= ${SAMPLES_PER_VERSION}`,
  );
  const byVersion = new Map<number, number>();
  const samples = new Map<number, StoredSecretSample[]>();
  for (const row of sampled) {
    const version = Number(row.version);
    byVersion.set(version, Number(row.secrets));
    const binding =
      row.slot === 'credential'
        ? credentialBinding(row.customer_id, row.agent_id as string, row.kind as string)
        : webhookSecretBinding(row.customer_id, row.slot);
    const secret = { ciphertext: row.ciphertext, iv: row.iv, authTag: row.auth_tag, keyVersion: version };
    samples.set(version, [...(samples.get(version) ?? []), { binding, secret }]);
  }
  return { byVersion, samples };
}

/** Whether the keyring's key of `version` decrypts one of the samples (true when there are none). */
function decryptsAny(keyring: Keyring, samples: StoredSecretSample[] | undefined): boolean {
  if (!samples?.length) return true;
  return samples.some(({ binding, secret }) => {
    try {
      decryptSecret(keyring, binding, secret);
      return true;
    } catch (error) {
      if (error instanceof DecryptionError) return false;
      throw error;
    }
  });
}

export type MasterKeyVerdict =
  | { kind: 'ok' }
  /** Some secrets are under a key the keyring lacks: their agents fail until the key is back or they are PUT again. */
  | { kind: 'some-unreadable'; unreadable: number; total: number; versions: number[] }
  /** The keyring reads none of the stored secrets: the wrong ENCRYPTION_MASTER_KEY, nearly always. */
  | { kind: 'none-readable'; total: number; versions: number[] };

/**
 * Compares the versions secrets are stored under with the keyring's (a version is derived from its
 * key), then tries the key of each matching version on its samples: a version is 15 bits, so about
 * one wrong key in 32,767 has the right one's.
 */
export function judgeMasterKey(keyring: Keyring, stored: StoredKeyVersions): MasterKeyVerdict {
  const known = new Set(
    [keyring.current.version, keyring.previous?.version].filter(
      (version) => version !== undefined && decryptsAny(keyring, stored.samples.get(version)),
    ),
  );
  let total = 0;
  let unreadable = 0;
  const versions: number[] = [];
  for (const [version, secrets] of stored.byVersion) {
    total += secrets;
    if (known.has(version)) continue;
    unreadable += secrets;
    versions.push(version);
  }
  versions.sort((a, b) => a - b);
  if (unreadable === 0) return { kind: 'ok' };
  if (unreadable === total) return { kind: 'none-readable', total, versions };
  return { kind: 'some-unreadable', unreadable, total, versions };
}

/** The start-up line for a keyring that reads no stored secret, naming the variable and what to do. */
export function noReadableSecretsProblem(
  keyring: Keyring,
  verdict: Extract<MasterKeyVerdict, { kind: 'none-readable' }>,
  keyFrom: string,
): string {
  const secrets = verdict.total === 1 ? '1 stored secret' : `${verdict.total} stored secrets`;
  const { version } = keyring.current;
  const alike = verdict.versions.includes(version) ? ' as well, by chance' : '';
  return (
    `${keyFrom} is not the key the database's secrets were encrypted with: it decrypts none of its ` +
    `${secrets} (under master key version ${verdict.versions.join(', ')}; this key is version ` +
    `${version}${alike}). Set ENCRYPTION_MASTER_KEY to the key they were made with; to move to a ` +
    'new key, set the old one as ENCRYPTION_MASTER_KEY_PREVIOUS and run `npm run rotate-master-key`.'
  );
}
