import { and, eq, isNotNull, ne, or } from 'drizzle-orm';
import { credentialFingerprint, decryptCredentialRow, SECRET_UNCHANGED } from './credentials';
import { credentialBinding, DecryptionError, encryptSecret, type Keyring } from './crypto';
import type { Database } from './db/client';
import { credentials, customers } from './db/schema';
import { judgeMasterKey, storedKeyVersions } from './master-key-check';
import { readWebhookSecretSlot, webhookSecretSlotColumns } from './webhooks/secrets';

export interface RotationReport {
  credentials: number;
  webhookSecrets: number;
}

/**
 * Re-encrypts every stored secret under the current master key, reading old ones with the previous
 * key. Batches commit one by one, so an interrupted run resumes where it stopped, and a second run
 * finds nothing to do. Rows are locked with SKIP LOCKED, so two runs at once do not collide.
 */
export async function rotateMasterKey(
  db: Database,
  keyring: Keyring,
  options: { batchSize?: number } = {},
): Promise<RotationReport> {
  const batchSize = options.batchSize ?? 100;
  const { current, previous } = keyring;
  if (!previous) {
    throw new RotationError('ENCRYPTION_MASTER_KEY_PREVIOUS must hold the old key to rotate from');
  }
  if (previous.version === current.version) {
    throw new RotationError(
      previous.key.equals(current.key)
        ? 'ENCRYPTION_MASTER_KEY and ENCRYPTION_MASTER_KEY_PREVIOUS are the same key'
        : 'the new master key collides with the old one on its version number; generate another new key',
    );
  }
  // Secrets under a third key would stop the run at their batch, and running it again cannot help.
  const verdict = judgeMasterKey(keyring, await storedKeyVersions(db));
  if (verdict.kind !== 'ok') {
    const unreadable = verdict.kind === 'none-readable' ? verdict.total : verdict.unreadable;
    throw new RotationError(
      `${unreadable === 1 ? '1 stored secret is' : `${unreadable} stored secrets are`} under master key ` +
        `version ${verdict.versions.join(', ')}, which neither ENCRYPTION_MASTER_KEY (version ` +
        `${current.version}) nor ENCRYPTION_MASTER_KEY_PREVIOUS (version ${previous.version}) decrypts: set ` +
        'ENCRYPTION_MASTER_KEY_PREVIOUS to the key they were encrypted with. Nothing was changed.',
    );
  }
  const report: RotationReport = { credentials: 0, webhookSecrets: 0 };

  for (;;) {
    const moved = await db.transaction(async (tx) => {
      const rows = await tx
        .select()
        .from(credentials)
        .where(ne(credentials.keyVersion, current.version))
        .limit(batchSize)
        .for('update', { skipLocked: true });
      for (const row of rows) {
        const binding = credentialBinding(row.customerId, row.agentId, row.kind);
        const secret = readOrExplain(
          () => decryptCredentialRow(keyring, row),
          `the ${row.kind} credential of agent ${row.agentId}`,
          `PUT /api/v1/agents/${row.agentId}/credentials/${row.kind} again (or delete the agent)`,
        );
        await tx
          .update(credentials)
          .set({
            ...encryptSecret(keyring, binding, secret),
            fingerprint: credentialFingerprint(keyring, row.kind, secret),
            ...SECRET_UNCHANGED,
          })
          .where(eq(credentials.id, row.id));
      }
      return rows.length;
    });
    report.credentials += moved;
    if (moved < batchSize) break;
  }

  for (;;) {
    const moved = await db.transaction(async (tx) => {
      const rows = await tx
        .select()
        .from(customers)
        .where(
          or(
            and(
              isNotNull(customers.webhookSecretCiphertext),
              ne(customers.webhookSecretKeyVersion, current.version),
            ),
            and(
              isNotNull(customers.previousWebhookSecretCiphertext),
              ne(customers.previousWebhookSecretKeyVersion, current.version),
            ),
          ),
        )
        .limit(batchSize)
        .for('update', { skipLocked: true });
      for (const row of rows) {
        const changes: Partial<typeof customers.$inferInsert> = {};
        for (const slot of ['current', 'previous'] as const) {
          const secret = readOrExplain(
            () => readWebhookSecretSlot(keyring, row, slot),
            `the ${slot === 'current' ? '' : 'previous '}webhook signing secret of customer ${row.id}`,
            'have that customer rotate it (POST /api/v1/webhook/rotate-secret)',
          );
          if (secret) Object.assign(changes, webhookSecretSlotColumns(keyring, row.id, slot, secret));
        }
        await tx.update(customers).set(changes).where(eq(customers.id, row.id));
      }
      return rows.length;
    });
    report.webhookSecrets += moved;
    if (moved < batchSize) break;
  }
  return report;
}

/** A rotation that running it again cannot get past: the message says what to change first. */
export class RotationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RotationError';
  }
}

/**
 * A secret under a configured key that still does not decrypt was tampered with or copied from
 * another row: the rotation stops at its batch (earlier batches stay done), naming the row and the fix.
 */
function readOrExplain<T>(read: () => T, what: string, fix: string): T {
  try {
    return read();
  } catch (error) {
    if (!(error instanceof DecryptionError)) throw error;
    throw new RotationError(
      `${what} does not decrypt under its master key (tampered with, or copied from another row): ` +
        `${fix}, then run the rotation again; the batches before it are done.`,
    );
  }
}
