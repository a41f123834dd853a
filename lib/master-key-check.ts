import { sql } from 'drizzle-orm';
import type { Keyring } from './crypto';
import { type Queryable, selectRows } from './db/client';

export interface StoredKeyVersions {
  /** Stored secrets (credentials and customers' webhook secrets) by the master key version they are under. */
  byVersion: Map<number, number>;
}

/** How many stored secrets each master key version holds; the start-up check's one query. */
export async function storedKeyVersions(db: Queryable): Promise<StoredKeyVersions> {
  const rows = await selectRows<{ version: number; secrets: number }>(
    db,
    sql`select version, count(*)::int as secrets from (
          select key_version as version from credentials
          union all select webhook_secret_key_version from customers where webhook_secret_ciphertext is not null
          union all select previous_webhook_secret_key_version from customers
            where previous_webhook_secret_ciphertext is not null
        ) stored group by version`,
  );
  return { byVersion: new Map(rows.map((row) => [Number(row.version), Number(row.secrets)])) };
}

export type MasterKeyVerdict =
  | { kind: 'ok' }
  /** Some secrets are under a key the keyring lacks: their agents fail until the key is back or they are PUT again. */
  | { kind: 'some-unreadable'; unreadable: number; total: number; versions: number[] }
  /** The keyring reads none of the stored secrets: the wrong ENCRYPTION_MASTER_KEY, nearly always. */
  | { kind: 'none-readable'; total: number; versions: number[] };

/** Compares the versions secrets are stored under with the keyring's (a version is derived from its key). */
export function judgeMasterKey(keyring: Keyring, stored: StoredKeyVersions): MasterKeyVerdict {
  const known = new Set([keyring.current.version, keyring.previous?.version]);
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
  return (
    `${keyFrom} is not the key the database's secrets were encrypted with: it decrypts none of its ` +
    `${secrets} (under master key version ${verdict.versions.join(', ')}; this key is version ` +
    `${keyring.current.version}). Set ENCRYPTION_MASTER_KEY to the key they were made with; to move to a ` +
    'new key, set the old one as ENCRYPTION_MASTER_KEY_PREVIOUS and run `npm run rotate-master-key`.'
  );
}
