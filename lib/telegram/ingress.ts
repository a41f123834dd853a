import { eq, sql } from 'drizzle-orm';
import { type Database, selectRows } from '../db/client';
import { telegramMessages } from '../db/schema';
import type { JobEvent, SendEvent } from '../jobs';
import type { Logger } from '../logger';
import { parseCommand, TelegramUpdateSchema, updateMessage } from './updates';

/** The event the reply pipeline consumes for each stored update (functions/events.ts declares it). */
export const UPDATE_RECEIVED = 'telegram/update.received';

export interface StoredUpdateRef {
  agentId: string;
  customerId: string;
  /** telegram_messages.id of the stored inbound message. */
  messageId: string;
  chatId: number;
  updateId: number;
}

/**
 * The event for one stored update, built the same way by ingress and by the outbox sweeper: its id
 * `<agentId>:<update_id>` makes the engine drop a second copy. `chatKey` is the reply function's
 * concurrency key (one run at a time per agent and chat), a plain path in the CEL subset.
 */
export function updateReceivedEvent(ref: StoredUpdateRef): JobEvent {
  return {
    name: UPDATE_RECEIVED,
    id: `${ref.agentId}:${ref.updateId}`,
    data: { ...ref, chatKey: `${ref.agentId}:${ref.chatId}` },
  };
}

export type IngestOutcome =
  | { result: 'stored'; messageId: string; eventSent: boolean }
  | { result: 'duplicate' }
  | { result: 'ignored'; reason: 'malformed' | 'no_message' };

/**
 * The one ingress path of Telegram updates, for the webhook and for long polling alike: the update is
 * stored first (update_id is unique per agent, so a redelivery is a no-op), then its event is sent
 * with id `<agentId>:<update_id>` (the engine drops a second one), then the row is marked as sent.
 * If sending fails after the write, the row keeps `event_sent_at` null for the outbox sweeper: a crash
 * between the two loses nothing. A malformed update is acknowledged and logged, never retried forever.
 */
export async function ingestTelegramUpdate(
  db: Database,
  sendEvent: SendEvent,
  logger: Logger,
  agent: { id: string; customerId: string },
  raw: unknown,
): Promise<IngestOutcome> {
  const parsed = TelegramUpdateSchema.safeParse(raw);
  if (!parsed.success) {
    logger.warn(
      { agentId: agent.id, issues: parsed.error.issues.slice(0, 3) },
      'malformed Telegram update acknowledged',
    );
    return { result: 'ignored', reason: 'malformed' };
  }
  const update = parsed.data;
  const found = updateMessage(update);
  if (!found) return { result: 'ignored', reason: 'no_message' };
  const { message } = found;
  const text = message.text ?? message.caption ?? null;
  // One round trip: the message (a redelivery inserts nothing, and then nothing else happens), the
  // chat as Telegram describes it now, and the agent's last-message time (at most once a second).
  const chat = message.chat;
  const [stored] = await selectRows<{ id: string }>(
    db,
    sql`with m as (
          insert into telegram_messages (agent_id, customer_id, chat_id, update_id, telegram_message_id,
            direction, from_user_id, from_username, text, update, is_command)
          values (${agent.id}, ${agent.customerId}, ${chat.id}, ${update.update_id}, ${message.message_id},
            'inbound', ${message.from?.id ?? null}, ${message.from?.username ?? null}, ${text},
            ${JSON.stringify(raw)}::jsonb, ${parseCommand(text ?? undefined) !== undefined})
          on conflict (agent_id, update_id) do nothing
          returning id),
        c as (
          insert into telegram_chats (agent_id, chat_id, type, title, username)
          select ${agent.id}, ${chat.id}, ${chat.type}, ${chat.title ?? null}, ${chat.username ?? null}
          where exists (select 1 from m)
          on conflict (agent_id, chat_id) do update
            set type = excluded.type, title = excluded.title, updated_at = now()),
        a as (
          update agents set last_message_at = now()
          where id = ${agent.id} and exists (select 1 from m)
            and (last_message_at is null or last_message_at < now() - interval '1 second'))
        select id from m`,
  );
  if (!stored) return { result: 'duplicate' };

  try {
    await sendEvent([
      updateReceivedEvent({
        agentId: agent.id,
        customerId: agent.customerId,
        messageId: stored.id,
        chatId: message.chat.id,
        updateId: update.update_id,
      }),
    ]);
  } catch (error) {
    logger.error(
      { agentId: agent.id, err: error instanceof Error ? error.message : String(error) },
      'update stored, event not sent: left for the sweeper',
    );
    return { result: 'stored', messageId: stored.id, eventSent: false };
  }
  await db
    .update(telegramMessages)
    .set({ eventSentAt: new Date() })
    .where(eq(telegramMessages.id, stored.id));
  return { result: 'stored', messageId: stored.id, eventSent: true };
}
