import { and, eq } from 'drizzle-orm';
import type { RequestContext } from '../actor';
import { checkAgentIfMatch, deleteAgent, getOwnAgent } from '../agents';
import { readCredentialSecret } from '../credentials';
import { checkCustomerIfMatch, deleteCustomer, findCustomerRow } from '../customers';
import { agents } from '../db/schema';
import { isUuid } from '../pagination';
import type { Services } from '../services';
import { createTelegramApi } from '../telegram/api';
import { webhookUrlFor } from './transitions';

/**
 * Removes the webhook of the agent's bot when it still points at the agent: once the agent is gone
 * Telegram would go on posting there (refused), and the bot could be neither polled nor started
 * elsewhere. A webhook that points elsewhere (another agent runs on the bot now) is left alone.
 * Best effort: an unreachable Telegram is logged and answers false; the caller goes on.
 */
export async function removeAgentWebhook(services: Services, agentId: string): Promise<boolean> {
  const base = services.config.telegram.webhookBaseUrl;
  if (!base) return true;
  try {
    const token = await readCredentialSecret(services.db, services.keyring, agentId, 'telegram');
    if (!token) return true;
    const api = createTelegramApi(token, { apiRoot: services.config.telegram.apiRoot, timeoutMs: 5_000 });
    const info = await api.getWebhookInfo();
    if (info.url === webhookUrlFor(base, agentId)) await api.deleteWebhook();
    return true;
  } catch (error) {
    services.logger.warn(
      { agentId, err: error instanceof Error ? error.message : String(error) },
      'could not remove the webhook of an agent that no longer runs',
    );
    return false;
  }
}

/** The error code of a stop that could not remove the webhook (functions/stop-agent.ts). */
export const WEBHOOK_NOT_REMOVED = 'webhook_not_removed';

/** Stopped agents whose stop left the webhook at Telegram: the reconcile cron tries again. */
export async function agentsWithLeftoverWebhook(services: Services): Promise<{ id: string }[]> {
  return services.db
    .select({ id: agents.id })
    .from(agents)
    .where(and(eq(agents.status, 'stopped'), eq(agents.lastErrorCode, WEBHOOK_NOT_REMOVED)));
}

/** Removes a stopped agent's leftover webhook; once gone, its last error is cleared. */
export async function removeLeftoverWebhook(services: Services, agentId: string): Promise<boolean> {
  if (!(await removeAgentWebhook(services, agentId))) return false;
  await services.db
    .update(agents)
    .set({ lastError: null, lastErrorCode: null, lastErrorAt: null })
    .where(
      and(
        eq(agents.id, agentId),
        eq(agents.status, 'stopped'),
        eq(agents.lastErrorCode, WEBHOOK_NOT_REMOVED),
      ),
    );
  return true;
}

/** Deletes the customer's agent (404 for another's), first removing its bot's webhook. */
export async function deleteAgentAndWebhook(
  services: Services,
  context: RequestContext,
  customerId: string,
  agentId: string,
  options: { ifMatch?: string | undefined } = {},
): Promise<void> {
  const agent = await getOwnAgent(services.db, customerId, agentId);
  // Before the webhook goes: a refused delete leaves the agent answering as it was.
  checkAgentIfMatch(agent, options.ifMatch);
  await removeAgentWebhook(services, agent.id);
  await deleteAgent(services.db, context, customerId, agent.id, options);
}

/** Deletes a customer with everything it has, first removing its agents' webhooks. */
export async function deleteCustomerAndWebhooks(
  services: Services,
  context: RequestContext,
  customerId: string,
  options: { ifMatch?: string | undefined } = {},
): Promise<void> {
  if (options.ifMatch !== undefined) {
    // Before the webhooks go: a refused delete leaves the customer's bots answering as they were.
    const current = await findCustomerRow(services.db, customerId);
    if (current) checkCustomerIfMatch(current, options.ifMatch);
  }
  const owned = isUuid(customerId)
    ? await services.db.select({ id: agents.id }).from(agents).where(eq(agents.customerId, customerId))
    : [];
  for (const agent of owned) await removeAgentWebhook(services, agent.id);
  await deleteCustomer(services.db, context, customerId, options);
}
