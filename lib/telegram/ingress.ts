import { randomUUID } from 'node:crypto';
import { inArray, sql } from 'drizzle-orm';
import { type Database, type Queryable, selectRows } from '../db/client';
import { telegramMessages } from '../db/schema';
import { GroupCommit } from '../group-commit';
import type { JobEvent, SendEvent, StatementWithEvents, WritesWithEvents } from '../jobs';
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

/** Outbox: these stored updates' events were accepted, so the sweeper leaves them alone. */
export async function markEventsSent(db: Database, messageIds: string[], at: Date): Promise<void> {
  await db.update(telegramMessages).set({ eventSentAt: at }).where(inArray(telegramMessages.id, messageIds));
}

export type IngestOutcome =
  | { result: 'stored'; messageId: string; eventSent: boolean }
  | { result: 'duplicate' }
  | { result: 'ignored'; reason: 'malformed' | 'no_message' };

/** What one update needs stored, read from it before any database work. */
interface IngressRow {
  agent: { id: string; customerId: string };
  chat: { id: number; type: string; title: string | null; username: string | null };
  updateId: number;
  telegramMessageId: number;
  fromUserId: number | null;
  fromUsername: string | null;
  text: string | null;
  update: unknown;
  isCommand: boolean;
}

/**
 * The one ingress path of Telegram updates, for the webhook and for long polling alike: the update is
 * stored first (update_id is unique per agent, so a redelivery is a no-op), then its event is sent
 * with id `<agentId>:<update_id>` (the engine drops a second one), then the row is marked as sent.
 * If sending fails after the write, the row keeps `event_sent_at` null for the outbox sweeper: a crash
 * between the two loses nothing. A malformed update is acknowledged and logged, never retried forever.
 *
 * With an engine that keeps its events in this database (`eventsStatement`, the embedded executor),
 * the update and its event are written in one statement instead, already marked sent: both are
 * stored or neither is, in one round trip, and there is no gap for the sweeper to cover.
 *
 * Updates arriving together (a busy bot, several bots) share the work (group commit): one statement
 * stores them all with their chats (and their events, with `eventsStatement`); otherwise one `send`
 * carries all their events, and one statement marks them sent, after `ingest` has resolved. `ingest` resolves once its own update
 * is stored and its event sent (or left for the sweeper); it throws only when the write failed (the
 * webhook then answers 5xx, so Telegram delivers it again).
 *
 * @example
 * const ingress = new TelegramIngress({ db, sendEvent, logger, eventsStatement: executor.statement });
 * await ingress.ingest(agent, await c.req.json(), c.get('logger'));
 */
export class TelegramIngress {
  private readonly db: Database;
  private readonly sendEvent: SendEvent;
  private readonly logger: Logger;
  private readonly writes: GroupCommit<IngressRow, IngestOutcome>;
  private readonly marks: GroupCommit<string, undefined>;
  private readonly eventsStatement: StatementWithEvents | undefined;

  constructor(deps: {
    db: Database;
    sendEvent: SendEvent;
    logger: Logger;
    eventsStatement?: StatementWithEvents | undefined;
  }) {
    this.db = deps.db;
    this.sendEvent = deps.sendEvent;
    this.logger = deps.logger;
    this.eventsStatement = deps.eventsStatement;
    // Two batches in flight, not more: bigger batches did better than more of them (bench:ingress).
    this.writes = new GroupCommit((rows) => this.store(rows), { maxParallel: 2 });
    // Best effort: a batch that cannot be marked is logged once and left to the sweeper, rather than
    // retried row by row against a database that is failing anyway.
    this.marks = new GroupCommit(
      async (ids) => {
        await markEventsSent(this.db, ids, new Date()).catch((error: unknown) => this.markFailed(ids, error));
        return ids.map(() => undefined);
      },
      { maxParallel: 1, maxBatch: 1000 },
    );
  }

  async ingest(
    agent: { id: string; customerId: string },
    raw: unknown,
    logger: Logger = this.logger,
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
    return this.writes.submit({
      agent,
      chat: {
        id: message.chat.id,
        type: message.chat.type,
        title: message.chat.title ?? null,
        username: message.chat.username ?? null,
      },
      updateId: update.update_id,
      telegramMessageId: message.message_id,
      fromUserId: message.from?.id ?? null,
      fromUsername: message.from?.username ?? null,
      text,
      update: raw,
      isCommand: parseCommand(text ?? undefined) !== undefined,
    });
  }

  private markFailed(ids: string[], error: unknown): void {
    this.logger.warn(
      { updates: ids.length, err: error instanceof Error ? error.message : String(error) },
      'updates not marked sent: the sweeper will send their events again (the engine drops the copies)',
    );
  }

  private async store(rows: IngressRow[]): Promise<IngestOutcome[]> {
    // Each update's message id is chosen here, so its event can be built before the write.
    const events = rows.map((row) => eventOf(row, randomUUID()));
    if (this.eventsStatement) {
      // One statement: the updates with their events, or neither (the webhook answers 5xx).
      const inserted = await this.eventsStatement<StoredRow>(messageWrites(rows, events, true), events);
      return outcomesOf(storedOf(events, inserted), true);
    }
    const stored = storedOf(events, await insertMessages(this.db, messageWrites(rows, events, false)));
    const fresh = events.filter((_, index) => stored[index]);
    let eventSent = false;
    if (fresh.length > 0) {
      try {
        await this.sendEvent(fresh);
        eventSent = true;
      } catch (error) {
        this.logger.error(
          {
            agentIds: [...new Set(rows.filter((_, index) => stored[index]).map((row) => row.agent.id))],
            updates: fresh.length,
            err: error instanceof Error ? error.message : String(error),
          },
          'updates stored, events not sent: left for the sweeper',
        );
      }
      // Marked off the request's path, many batches in one statement: a mark that never lands only
      // makes the sweeper send the event again, with the same id, which the engine drops.
      if (eventSent) for (const id of stored) if (id) void this.marks.submit(id);
    }
    return outcomesOf(stored, eventSent);
  }
}

interface StoredRow extends Record<string, unknown> {
  id: string;
}

/**
 * The statement parts storing the updates not stored yet, with their chats (`sent`: already marked as
 * sent, their events being written with them). `events[i]` is row i's event, its `messageId` the id
 * the row is stored under; the gate yields the events of the rows stored (not of a redelivery).
 */
function messageWrites(rows: IngressRow[], events: JobEvent[], sent: boolean): WritesWithEvents {
  const input = rows.map((row, ord) => ({
    ord,
    id: events[ord]?.data.messageId,
    event_id: events[ord]?.id,
    agent_id: row.agent.id,
    customer_id: row.agent.customerId,
    chat_id: row.chat.id,
    update_id: row.updateId,
    telegram_message_id: row.telegramMessageId,
    from_user_id: row.fromUserId,
    from_username: row.fromUsername,
    text: row.text,
    update: row.update,
    is_command: row.isCommand,
    chat_type: row.chat.type,
    chat_title: row.chat.title,
    chat_username: row.chat.username,
  }));
  // The messages (a redelivery inserts nothing, and then nothing else happens), each chat as Telegram
  // describes it now (its latest update; rewritten only when that differs), and the agents'
  // last-message time (at most once a second).
  return {
    writes: sql`input as (
            select * from jsonb_to_recordset(${JSON.stringify(input)}::jsonb) as x(
              ord int, id uuid, event_id text, agent_id uuid, customer_id uuid, chat_id bigint, update_id bigint,
              telegram_message_id bigint, from_user_id bigint, from_username text, text text, update jsonb,
              is_command boolean, chat_type text, chat_title text, chat_username text)),
          m as (
            insert into telegram_messages (id, agent_id, customer_id, chat_id, update_id, telegram_message_id,
              direction, from_user_id, from_username, text, update, is_command, event_sent_at)
            select id, agent_id, customer_id, chat_id, update_id, telegram_message_id, 'inbound'::message_direction,
              from_user_id, from_username, text, update, is_command, ${sent ? sql`now()` : sql`null`}::timestamptz
            from input order by ord
            on conflict (agent_id, update_id) do nothing
            returning id, agent_id, update_id),
          c as (
            insert into telegram_chats (agent_id, chat_id, type, title, username)
            select distinct on (i.agent_id, i.chat_id) i.agent_id, i.chat_id, i.chat_type, i.chat_title, i.chat_username
            from input i join m on m.id = i.id
            order by i.agent_id, i.chat_id, i.ord desc
            on conflict (agent_id, chat_id) do update
              set type = excluded.type, title = excluded.title, username = excluded.username, updated_at = now()
              -- An unchanged chat is not rewritten: most updates come from chats already known.
              where (telegram_chats.type, telegram_chats.title, telegram_chats.username)
                is distinct from (excluded.type, excluded.title, excluded.username)),
          a as (
            update agents set last_message_at = now()
            where id in (select agent_id from m)
              and (last_message_at is null or last_message_at < now() - interval '1 second'))`,
    gate: sql`select i.event_id as external_id from input i join m on m.id = i.id`,
    select: sql`select id from m`,
  };
}

/** The messages `writes` stored, in one round trip. */
function insertMessages(db: Queryable, writes: WritesWithEvents): Promise<StoredRow[]> {
  return selectRows<StoredRow>(db, sql`with ${writes.writes} ${writes.select}`);
}

/**
 * Each row's message id if it was stored, or undefined for a redelivery (of an update stored earlier,
 * or a second copy in this batch: the first copy is the one stored).
 */
function storedOf(events: JobEvent[], inserted: StoredRow[]): (string | undefined)[] {
  const ids = new Set(inserted.map((row) => row.id));
  return events.map((event) => {
    const id = event.data.messageId as string;
    return ids.has(id) ? id : undefined;
  });
}

function eventOf(row: IngressRow, messageId: string): JobEvent {
  return updateReceivedEvent({
    agentId: row.agent.id,
    customerId: row.agent.customerId,
    messageId,
    chatId: row.chat.id,
    updateId: row.updateId,
  });
}

function outcomesOf(stored: (string | undefined)[], eventSent: boolean): IngestOutcome[] {
  return stored.map(
    (id): IngestOutcome => (id ? { result: 'stored', messageId: id, eventSent } : { result: 'duplicate' }),
  );
}
