import { eq } from 'drizzle-orm';
import type { RequestContext } from '../actor';
import { deleteAgent, getOwnAgent } from '../agents';
import { readCredentialSecret } from '../credentials';
import { deleteCustomer } from '../customers';
import { agents } from '../db/schema';
import { isUuid } from '../pagination';
import type { Services } from '../services';
import { createTelegramApi } from '../telegram/api';
import { webhookUrlFor } from './transitions';

/**
 * Removes the webhook of the agent's bot when it still points at the agent: once the agent is gone
 * Telegram would go on posting there (refused), and the bot could be neither polled nor started
 * elsewhere. A webhook that points elsewhere (another agent runs on the bot now) is left alone.
 * Best effort: an unreachable Telegram or a revoked token is logged, and the caller goes on.
 */
export async function removeAgentWebhook(services: Services, agentId: string): Promise<void> {
  const base = services.config.telegram.webhookBaseUrl;
  if (!base) return;
  try {
    const token = await readCredentialSecret(services.db, services.keyring, agentId, 'telegram');
    if (!token) return;
    const api = createTelegramApi(token, { apiRoot: services.config.telegram.apiRoot, timeoutMs: 5_000 });
    const info = await api.getWebhookInfo();
    if (info.url === webhookUrlFor(base, agentId)) await api.deleteWebhook();
  } catch (error) {
    services.logger.warn(
      { agentId, err: error instanceof Error ? error.message : String(error) },
      'could not remove the webhook of a deleted agent',
    );
  }
}

/** Deletes the customer's agent (404 for another's), first removing its bot's webhook. */
export async function deleteAgentAndWebhook(
  services: Services,
  context: RequestContext,
  customerId: string,
  agentId: string,
): Promise<void> {
  const agent = await getOwnAgent(services.db, customerId, agentId);
  await removeAgentWebhook(services, agent.id);
  await deleteAgent(services.db, context, customerId, agent.id);
}

/** Deletes a customer with everything it has, first removing its agents' webhooks. */
export async function deleteCustomerAndWebhooks(
  services: Services,
  context: RequestContext,
  customerId: string,
): Promise<void> {
  const owned = isUuid(customerId)
    ? await services.db.select({ id: agents.id }).from(agents).where(eq(agents.customerId, customerId))
    : [];
  for (const agent of owned) await removeAgentWebhook(services, agent.id);
  await deleteCustomer(services.db, context, customerId);
}
