import { and, eq } from 'drizzle-orm';
import { readCredentialSecret } from '../credentials';
import { agents } from '../db/schema';
import type { Services } from '../services';
import { createTelegramApi } from '../telegram/api';
import { ALLOWED_UPDATES, webhookUrlFor } from './transitions';

export interface ReconcileOutcome {
  agentId: string;
  customerId: string;
  /** The webhook pointed elsewhere (or nowhere) and was registered again. */
  repaired: boolean;
  /** Telegram reports a delivery error newer than the one already surfaced. */
  deliveryError: { message: string; at: string } | null;
  /** Telegram could not be asked (network, revoked token). */
  unreachable: boolean;
}

/** Running agents served by webhook: the ones the reconcile cron checks. */
export async function runningWebhookAgents(
  services: Services,
): Promise<{ id: string; customerId: string }[]> {
  return services.db
    .select({ id: agents.id, customerId: agents.customerId })
    .from(agents)
    .where(and(eq(agents.status, 'running'), eq(agents.telegramDelivery, 'webhook')));
}

/**
 * Compares Telegram's getWebhookInfo with what should be registered: a wrong or missing URL is set
 * again with the stored secret_token; a new delivery error is recorded as the agent's last error.
 */
export async function reconcileAgentWebhook(
  services: Services,
  agentId: string,
): Promise<ReconcileOutcome | null> {
  const [agent] = await services.db.select().from(agents).where(eq(agents.id, agentId));
  const base = services.config.telegram.webhookBaseUrl;
  if (agent?.status !== 'running' || agent.telegramDelivery !== 'webhook' || !base) return null;
  const outcome: ReconcileOutcome = {
    agentId,
    customerId: agent.customerId,
    repaired: false,
    deliveryError: null,
    unreachable: false,
  };
  const token = await readCredentialSecret(services.db, services.keyring, agentId, 'telegram');
  const secret = await readCredentialSecret(services.db, services.keyring, agentId, 'telegram_webhook');
  if (!token || !secret) return { ...outcome, unreachable: true };
  const api = createTelegramApi(token, { apiRoot: services.config.telegram.apiRoot, timeoutMs: 10_000 });
  let info: Awaited<ReturnType<typeof api.getWebhookInfo>>;
  try {
    info = await api.getWebhookInfo();
  } catch {
    return { ...outcome, unreachable: true };
  }
  const expected = webhookUrlFor(base, agentId);
  if (info.url !== expected) {
    try {
      await api.setWebhook(expected, { secret_token: secret, allowed_updates: [...ALLOWED_UPDATES] });
      outcome.repaired = true;
    } catch {
      // Tried again at the next tick; thrown, it would fail the run and leave the agents after it unchecked.
      return { ...outcome, unreachable: true };
    }
  }
  if (info.last_error_date && info.last_error_message) {
    const at = new Date(info.last_error_date * 1000);
    if (!agent.lastErrorAt || at > agent.lastErrorAt) {
      await services.db
        .update(agents)
        .set({
          lastError: info.last_error_message,
          lastErrorCode: 'telegram_delivery_error',
          lastErrorAt: at,
        })
        .where(eq(agents.id, agentId));
      outcome.deliveryError = { message: info.last_error_message, at: at.toISOString() };
    }
  }
  return outcome;
}
