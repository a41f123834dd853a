import { createHash, timingSafeEqual } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { decryptCredentialRow } from '../credentials';
import type { Keyring } from '../crypto';
import type { Queryable } from '../db/client';
import { agents, credentials, customers } from '../db/schema';
import { isUuid } from '../pagination';

const digest = (value: string) => createHash('sha256').update(value).digest();

export interface WebhookAgent {
  id: string;
  customerId: string;
  /** Running, and its customer active: updates are stored and answered; otherwise acknowledged only. */
  answering: boolean;
}

/**
 * The agent a Telegram webhook call is for, when `X-Telegram-Bot-Api-Secret-Token` matches the
 * agent's secret_token (compared in constant time). Undefined for a wrong secret and for an agent
 * that does not exist alike, so the caller's 401 says nothing about which.
 */
export async function authenticateTelegramWebhook(
  db: Queryable,
  keyring: Keyring,
  agentId: string,
  presented: string | undefined,
): Promise<WebhookAgent | undefined> {
  if (!presented || !isUuid(agentId)) return undefined;
  const [row] = await db
    .select({
      id: agents.id,
      customerId: agents.customerId,
      status: agents.status,
      customerStatus: customers.status,
      secret: credentials,
    })
    .from(agents)
    .innerJoin(customers, eq(customers.id, agents.customerId))
    .leftJoin(credentials, and(eq(credentials.agentId, agents.id), eq(credentials.kind, 'telegram_webhook')))
    .where(eq(agents.id, agentId));
  if (!row?.secret) return undefined;
  const expected = decryptCredentialRow(keyring, row.secret);
  if (!timingSafeEqual(digest(expected), digest(presented))) return undefined;
  return {
    id: row.id,
    customerId: row.customerId,
    answering: row.status === 'running' && row.customerStatus === 'active',
  };
}
