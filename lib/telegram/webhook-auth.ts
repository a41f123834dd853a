import { createHash, timingSafeEqual } from 'node:crypto';
import { and, eq, isNull, sql } from 'drizzle-orm';
import { decryptCredentialRow, SECRET_UNCHANGED, webhookSecretFingerprints } from '../credentials';
import type { Keyring } from '../crypto';
import type { Queryable } from '../db/client';
import { preparedQuery } from '../db/prepared';
import { agents, credentials, customers } from '../db/schema';

const digest = (value: string) => createHash('sha256').update(value).digest();

export interface WebhookAgent {
  id: string;
  /** Running, and its customer active: updates are stored and answered; otherwise acknowledged only. */
  answering: boolean;
}

type CredentialRow = typeof credentials.$inferSelect;

/** The agent with its webhook secret_token credential (built once). */
const readAgentWithSecret = preparedQuery((db) =>
  db
    .select({
      id: agents.id,
      status: agents.status,
      customerStatus: customers.status,
      secret: credentials,
    })
    .from(agents)
    .innerJoin(customers, eq(customers.id, agents.customerId))
    .leftJoin(credentials, and(eq(credentials.agentId, agents.id), eq(credentials.kind, 'telegram_webhook')))
    .where(eq(agents.id, sql.placeholder('agentId')))
    .prepare('telegram_read_agent_with_secret'),
);

/**
 * Checks a webhook call's `X-Telegram-Bot-Api-Secret-Token` against the agent's secret_token by
 * decrypting it, compared in constant time: for a secret stored before fingerprints were kept
 * (TelegramIngress checks the others by fingerprint, in the statement storing the update). A secret
 * that matches gets its fingerprint, so the next calls need no decrypting. Undefined for a wrong
 * secret and for an agent that does not exist alike.
 */
export async function verifyWebhookSecretByDecrypting(
  db: Queryable,
  keyring: Keyring,
  agentId: string,
  presented: string,
): Promise<WebhookAgent | undefined> {
  const [row] = await readAgentWithSecret(db).execute({ agentId });
  if (!row?.secret) return undefined;
  const expected = decryptCredentialRow(keyring, row.secret);
  if (!timingSafeEqual(digest(expected), digest(presented))) return undefined;
  if (row.secret.fingerprint === null) await storeFingerprint(db, keyring, row.secret, expected);
  return { id: row.id, answering: row.status === 'running' && row.customerStatus === 'active' };
}

/**
 * Under the key the row is encrypted with (a rotation in progress may not have moved it yet), and only
 * if the row still holds this secret: a rotation since the read wrote its own.
 */
async function storeFingerprint(db: Queryable, keyring: Keyring, row: CredentialRow, secret: string) {
  const fingerprint = webhookSecretFingerprints(keyring, secret)[row.keyVersion];
  if (!fingerprint) return;
  await db
    .update(credentials)
    .set({ fingerprint, ...SECRET_UNCHANGED })
    .where(
      and(
        eq(credentials.id, row.id),
        eq(credentials.ciphertext, row.ciphertext),
        isNull(credentials.fingerprint),
      ),
    );
}
