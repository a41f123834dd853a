import { eq } from 'drizzle-orm';
import { DecryptionError, decryptSecret, encryptSecret, type Keyring, webhookSecretBinding } from '../crypto';
import type { Queryable } from '../db/client';
import { customers } from '../db/schema';
import { activeSigningSecrets, generateWebhookSecret, type SigningSecrets } from './sign';

type CustomerRow = typeof customers.$inferSelect;

export type WebhookSecretSlot = 'current' | 'previous';

/** The columns that store `secret` in a slot, encrypted and bound to the customer and the slot. */
export function webhookSecretSlotColumns(
  keyring: Keyring,
  customerId: string,
  slot: WebhookSecretSlot,
  secret: string,
) {
  const encrypted = encryptSecret(keyring, webhookSecretBinding(customerId, slot), secret);
  return slot === 'current'
    ? {
        webhookSecretCiphertext: encrypted.ciphertext,
        webhookSecretIv: encrypted.iv,
        webhookSecretAuthTag: encrypted.authTag,
        webhookSecretKeyVersion: encrypted.keyVersion,
      }
    : {
        previousWebhookSecretCiphertext: encrypted.ciphertext,
        previousWebhookSecretIv: encrypted.iv,
        previousWebhookSecretAuthTag: encrypted.authTag,
        previousWebhookSecretKeyVersion: encrypted.keyVersion,
      };
}

/** The columns that store a new current secret. */
export function currentSecretColumns(keyring: Keyring, customerId: string, secret: string) {
  return webhookSecretSlotColumns(keyring, customerId, 'current', secret);
}

/** The plaintext secret in a slot, or undefined when the slot is empty. */
export function readWebhookSecretSlot(
  keyring: Keyring,
  row: CustomerRow,
  slot: WebhookSecretSlot,
): string | undefined {
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
  const current = readWebhookSecretSlot(keyring, row, 'current');
  if (!current) return undefined;
  return activeSigningSecrets(
    {
      current,
      previous: readWebhookSecretSlot(keyring, row, 'previous') ?? null,
      previousExpiresAt: row.previousWebhookSecretExpiresAt,
    },
    now,
  );
}

/**
 * The current secret, or none when it no longer decrypts (tampered with, or under a master key no
 * longer configured): it can sign nothing, so rotating replaces it, without a grace period, instead
 * of failing and leaving the customer no way out.
 */
export function readableCurrentSecret(keyring: Keyring, row: CustomerRow): string | undefined {
  try {
    return readWebhookSecretSlot(keyring, row, 'current');
  } catch (error) {
    if (error instanceof DecryptionError) return undefined;
    throw error;
  }
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
): Promise<{ secret: string; previousExpiresAt: Date | null; row: CustomerRow }> {
  const secret = generateWebhookSecret();
  const old = readableCurrentSecret(keyring, row);
  const previousExpiresAt =
    old && options.graceMs > 0 ? new Date(options.now.getTime() + options.graceMs) : null;
  const [updated] = await db
    .update(customers)
    .set({
      ...currentSecretColumns(keyring, row.id, secret),
      ...(old && previousExpiresAt
        ? webhookSecretSlotColumns(keyring, row.id, 'previous', old)
        : {
            previousWebhookSecretCiphertext: null,
            previousWebhookSecretIv: null,
            previousWebhookSecretAuthTag: null,
            previousWebhookSecretKeyVersion: null,
          }),
      previousWebhookSecretExpiresAt: previousExpiresAt,
    })
    .where(eq(customers.id, row.id))
    .returning();
  if (!updated) throw new Error('customer row vanished during rotation');
  return { secret, previousExpiresAt, row: updated };
}
