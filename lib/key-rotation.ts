import { and, eq, isNotNull, ne, or } from 'drizzle-orm';
import { credentialFingerprint, decryptCredentialRow } from './credentials';
import { credentialBinding, encryptSecret, type Keyring } from './crypto';
import type { Database } from './db/client';
import { credentials, customers } from './db/schema';
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
  if (!previous) throw new Error('ENCRYPTION_MASTER_KEY_PREVIOUS must hold the old key to rotate from');
  if (previous.version === current.version) {
    throw new Error(
      previous.key.equals(current.key)
        ? 'ENCRYPTION_MASTER_KEY and ENCRYPTION_MASTER_KEY_PREVIOUS are the same key'
        : 'the new master key collides with the old one on its version number; generate another new key',
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
        const secret = decryptCredentialRow(keyring, row);
        await tx
          .update(credentials)
          .set({
            ...encryptSecret(keyring, binding, secret),
            fingerprint: credentialFingerprint(keyring, row.kind, secret),
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
          const secret = readWebhookSecretSlot(keyring, row, slot);
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
