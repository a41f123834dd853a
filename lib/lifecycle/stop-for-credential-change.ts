import type { RequestContext } from '../actor';
import { agentNotFound, findOwnAgent } from '../agents';
import { recordAudit } from '../audit';
import { readCredentialSecret } from '../credentials';
import type { SendEvent } from '../jobs';
import type { Services } from '../services';
import { createTelegramApi } from '../telegram/api';
import { CUSTOMER_EVENT_EMITTED } from '../webhooks/settings';
import { transition } from './transitions';

/**
 * A running agent whose Telegram token is about to change or go is stopped first, at once: its
 * webhook is removed with the old token (best effort: a revoked token has nothing to remove) and the
 * customer is told (agent.stopped, reason `telegram_credential_changed`). Returns whether it stopped.
 */
export async function stopForTelegramCredentialChange(
  services: Services,
  sendEvent: SendEvent,
  context: RequestContext,
  customerId: string,
  agentId: string,
): Promise<boolean> {
  const agent = await findOwnAgent(services.db, customerId, agentId);
  if (!agent) throw agentNotFound(agentId);
  if (agent.status === 'stopped') return false;
  const token = await readCredentialSecret(services.db, services.keyring, agentId, 'telegram');
  if (token) {
    try {
      await createTelegramApi(token, {
        apiRoot: services.config.telegram.apiRoot,
        timeoutMs: 5_000,
      }).deleteWebhook();
    } catch (error) {
      services.logger.warn(
        { agentId, err: error instanceof Error ? error.message : String(error) },
        'deleteWebhook failed',
      );
    }
  }
  const stopped = await transition(
    services.db,
    agentId,
    ['starting', 'running', 'stopping', 'error'],
    'stopped',
    {
      telegramDelivery: null,
    },
  );
  if (!stopped) return false;
  await recordAudit(services.db, context, {
    action: 'agent.stop',
    targetType: 'agent',
    targetId: agentId,
    details: { reason: 'telegram_credential_changed' },
  });
  const eventId = `${agentId}-stopped-${stopped.statusSince.getTime()}`;
  await sendEvent([
    {
      name: CUSTOMER_EVENT_EMITTED,
      id: `customer-event-${eventId}`,
      data: {
        customerId,
        agentId,
        type: 'agent.stopped',
        data: { reason: 'telegram_credential_changed' },
        eventId,
        occurredAt: new Date().toISOString(),
      },
    },
  ]);
  return true;
}
