import { eq, sql } from 'drizzle-orm';
import type { Database } from '../db/client';
import { agents, telegramChats, telegramMessages } from '../db/schema';
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
  const [stored] = await db
    .insert(telegramMessages)
    .values({
      agentId: agent.id,
      customerId: agent.customerId,
      chatId: message.chat.id,
      updateId: update.update_id,
      telegramMessageId: message.message_id,
      direction: 'inbound',
      fromUserId: message.from?.id ?? null,
      fromUsername: message.from?.username ?? null,
      text,
      update: raw as Record<string, unknown>,
      isCommand: parseCommand(text ?? undefined) !== undefined,
    })
    .onConflictDoNothing({ target: [telegramMessages.agentId, telegramMessages.updateId] })
    .returning({ id: telegramMessages.id });
  if (!stored) return { result: 'duplicate' };

  await db
    .insert(telegramChats)
    .values({
      agentId: agent.id,
      chatId: message.chat.id,
      type: message.chat.type,
      title: message.chat.title ?? null,
      username: message.chat.username ?? null,
    })
    .onConflictDoUpdate({
      target: [telegramChats.agentId, telegramChats.chatId],
      set: { type: message.chat.type, title: message.chat.title ?? null, updatedAt: sql`now()` },
    });
  await db.update(agents).set({ lastMessageAt: new Date() }).where(eq(agents.id, agent.id));

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
