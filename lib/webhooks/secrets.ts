import { eq } from 'drizzle-orm';
import { decryptSecret, encryptSecret, type Keyring, webhookSecretBinding } from '../crypto';
import type { Queryable } from '../db/client';
import { customers } from '../db/schema';
import { activeSigningSecrets, generateWebhookSecret, type SigningSecrets } from './sign';

type CustomerRow = typeof customers.$inferSelect;

/** The columns that store a new current secret (encrypted, bound to the customer's "current" slot). */
export function currentSecretColumns(keyring: Keyring, customerId: string, secret: string) {
  const encrypted = encryptSecret(keyring, webhookSecretBinding(customerId, 'current'), secret);
  return {
    webhookSecretCiphertext: encrypted.ciphertext,
    webhookSecretIv: encrypted.iv,
    webhookSecretAuthTag: encrypted.authTag,
    webhookSecretKeyVersion: encrypted.keyVersion,
  };
}

function readSlot(keyring: Keyring, row: CustomerRow, slot: 'current' | 'previous'): string | undefined {
  const stored =
    slot === 'current'
      ? [
          row.webhookSecretCiphertext,
          row.webhookSecretIv,
          row.webhookSecretAuthTag,
          row.webhookSecretKeyVersion,
        ]
      : [
          row.previousWebhookSecretCiphertext,
          row.previousWebhookSecretIv,
          row.previousWebhookSecretAuthTag,
          row.previousWebhookSecretKeyVersion,
        ];
  const [ciphertext, iv, authTag, keyVersion] = stored as [
    string | null,
    string | null,
    string | null,
    number | null,
  ];
  if (!ciphertext || !iv || !authTag || !keyVersion) return undefined;
  return decryptSecret(keyring, webhookSecretBinding(row.id, slot), { ciphertext, iv, authTag, keyVersion });
}

/** The secrets to sign with at `now`: the current one, plus the previous one during its grace period. */
export function signingSecretsOf(keyring: Keyring, row: CustomerRow, now: Date): SigningSecrets | undefined {
  const current = readSlot(keyring, row, 'current');
  if (!current) return undefined;
  return activeSigningSecrets(
    {
      current,
      previous: readSlot(keyring, row, 'previous') ?? null,
      previousExpiresAt: row.previousWebhookSecretExpiresAt,
    },
    now,
  );
}

/**
 * A new signing secret; the old one keeps signing (alongside) until `now + graceMs`, so receivers
 * can switch without dropping deliveries. Returns the new secret: shown to the customer once.
 */
export async function rotateWebhookSecret(
  db: Queryable,
  keyring: Keyring,
  row: CustomerRow,
  options: { graceMs: number; now: Date },
): Promise<{ secret: string; previousExpiresAt: Date | null }> {
  const secret = generateWebhookSecret();
  const old = readSlot(keyring, row, 'current');
  const previous = old ? encryptSecret(keyring, webhookSecretBinding(row.id, 'previous'), old) : undefined;
  const previousExpiresAt =
    previous && options.graceMs > 0 ? new Date(options.now.getTime() + options.graceMs) : null;
  await db
    .update(customers)
    .set({
      ...currentSecretColumns(keyring, row.id, secret),
      previousWebhookSecretCiphertext: previousExpiresAt ? (previous?.ciphertext ?? null) : null,
      previousWebhookSecretIv: previousExpiresAt ? (previous?.iv ?? null) : null,
      previousWebhookSecretAuthTag: previousExpiresAt ? (previous?.authTag ?? null) : null,
      previousWebhookSecretKeyVersion: previousExpiresAt ? (previous?.keyVersion ?? null) : null,
      previousWebhookSecretExpiresAt: previousExpiresAt,
    })
    .where(eq(customers.id, row.id));
  return { secret, previousExpiresAt };
}
