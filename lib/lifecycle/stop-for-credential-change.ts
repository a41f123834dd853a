import { and, eq, isNotNull } from 'drizzle-orm';
import type { RequestContext } from '../actor';
import { agentNotFound, findOwnAgent } from '../agents';
import { recordAudit } from '../audit';
import { readCredentialSecret } from '../credentials';
import { sameSecret } from '../crypto';
import type { Database } from '../db/client';
import { agents } from '../db/schema';
import type { SendEvent } from '../jobs';
import type { Services } from '../services';
import { createTelegramApi } from '../telegram/api';
import { customerEventToSend } from '../webhooks/settings';
import { transition } from './transitions';

const REASON = 'telegram_credential_changed';

/**
 * A running agent whose Telegram token is about to change or go is stopped first, at once: its
 * webhook is removed with the old token (best effort: a revoked token has nothing to remove) and the
 * customer is told (agent.stopped, reason `telegram_credential_changed`). Returns whether it stopped.
 *
 * The stop commits before its event is sent, with `unsent_stop_event_at` set. When the send fails the
 * request fails, and the client's retry (which finds the agent stopped) sends the event again, as does
 * the reconcile cron; the id comes from the stop's time, so the engine keeps one copy.
 */
export async function stopForTelegramCredentialChange(
  services: Services,
  sendEvent: SendEvent,
  context: RequestContext,
  customerId: string,
  agentId: string,
  /** The token it is about to get (none when it goes): the one it has already is no change, and nothing stops. */
  change: { newToken?: string | undefined } = {},
): Promise<boolean> {
  const agent = await findOwnAgent(services.db, customerId, agentId);
  if (!agent) throw agentNotFound(agentId);
  if (agent.status === 'stopped') {
    if (agent.unsentStopEventAt) {
      await sendStopEvent(services.db, sendEvent, { agentId, customerId, at: agent.unsentStopEventAt });
    }
    return false;
  }
  const token = await readCredentialSecret(services.db, services.keyring, agentId, 'telegram');
  if (token && change.newToken !== undefined && sameSecret(token, change.newToken)) return false;
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
  const now = new Date();
  const stopped = await services.db.transaction(async (tx) => {
    const row = await transition(tx, agentId, ['starting', 'running', 'stopping', 'error'], 'stopped', {
      telegramDelivery: null,
      statusSince: now,
      unsentStopEventAt: now,
    });
    if (row) {
      await recordAudit(tx, context, {
        action: 'agent.stop',
        targetType: 'agent',
        targetId: agentId,
        details: { reason: REASON },
      });
    }
    return row;
  });
  if (!stopped) return false;
  await sendStopEvent(services.db, sendEvent, { agentId, customerId, at: now });
  return true;
}

interface UnsentStopEvent {
  agentId: string;
  customerId: string;
  /** The stop's time, which the event's id and occurredAt carry. */
  at: Date;
}

/** Hands the stop's agent.stopped event to the engine, then marks it sent (unless a later stop replaced it). */
async function sendStopEvent(
  db: Database,
  sendEvent: SendEvent,
  { agentId, customerId, at }: UnsentStopEvent,
): Promise<void> {
  await sendEvent([
    customerEventToSend({
      customerId,
      agentId,
      type: 'agent.stopped',
      data: { reason: REASON },
      eventId: `${agentId}-stopped-${at.getTime()}`,
      at,
    }),
  ]);
  await db
    .update(agents)
    .set({ unsentStopEventAt: null })
    .where(and(eq(agents.id, agentId), eq(agents.unsentStopEventAt, at)));
}

/**
 * Sends the agent.stopped events of credential-change stops whose request failed after the stop and
 * was not retried (the reconcile cron calls it). Returns how many it sent.
 */
export async function sendUnsentStopEvents(db: Database, sendEvent: SendEvent): Promise<number> {
  const rows = await db
    .select({ agentId: agents.id, customerId: agents.customerId, at: agents.unsentStopEventAt })
    .from(agents)
    .where(isNotNull(agents.unsentStopEventAt));
  let sent = 0;
  for (const { agentId, customerId, at } of rows) {
    if (!at) continue;
    await sendStopEvent(db, sendEvent, { agentId, customerId, at });
    sent += 1;
  }
  return sent;
}
