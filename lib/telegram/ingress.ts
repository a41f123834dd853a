import { randomUUID } from 'node:crypto';
import { inArray, sql } from 'drizzle-orm';
import { webhookSecretFingerprints } from '../credentials';
import type { Keyring } from '../crypto';
import { type Database, selectRows } from '../db/client';
import { telegramMessages } from '../db/schema';
import { GroupCommit } from '../group-commit';
import type { JobEvent, SendEvent, StatementWithEvents, WritesWithEvents } from '../jobs';
import type { Logger } from '../logger';
import { isUuid } from '../pagination';
import { parseCommand, TelegramUpdateSchema, updateMessage } from './updates';
import { TelegramWebhookAuth } from './webhook-auth';

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
 * concurrency key (one run at a time per agent and chat), a plain path in the CEL subset. Without
 * `customerId`, the statement that stores the event adds it (the agent's, which only it reads).
 */
export function updateReceivedEvent(
  ref: Omit<StoredUpdateRef, 'customerId'> & { customerId?: string },
): JobEvent {
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
  | { result: 'ignored'; reason: 'malformed' | 'no_message' | 'not_answering' }
  | { result: 'unauthorized' };

/** What one update needs stored, read from it before any database work. */
interface UpdateRow {
  chat: { id: number; type: string; title: string | null; username: string | null };
  updateId: number;
  telegramMessageId: number;
  fromUserId: number | null;
  fromUsername: string | null;
  text: string | null;
  update: unknown;
  isCommand: boolean;
}

/** One call's part of a batch. */
interface IngressCall {
  agentId: string;
  /**
   * The webhook secret_token the call presented, fingerprinted under each master key (by version);
   * undefined when the caller knows the agent already (long polling, or a secret checked by decrypting).
   */
  fingerprints: Record<string, string> | undefined;
  /** The update to store; undefined when there is none (malformed): the call is only authenticated. */
  update: UpdateRow | undefined;
}

/**
 * How the batch's statement judged one call: `ok` (the secret matches), `trusted` (no secret to
 * check), `unauthorized` (it does not, or the agent has no secret or does not exist), `unverified`
 * (the agent's secret has no fingerprint yet: it was stored before they were kept).
 */
interface CallResult {
  verdict: 'ok' | 'trusted' | 'unauthorized' | 'unverified';
  /** The agent is running and its customer active. */
  answering: boolean;
  /** The stored message, or undefined (a redelivery, or nothing to store). */
  messageId: string | undefined;
  eventSent: boolean;
}

type ReadUpdate =
  | { row: UpdateRow }
  | { row: undefined; reason: 'malformed' | 'no_message'; issues?: unknown };

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
 * A webhook call (`receive`) is authenticated by the statement that stores its update: it compares
 * the keyed fingerprint of the presented secret_token with the one stored with the agent's secret,
 * and stores the update only when they match and the agent is answering. Comparing fingerprints
 * (HMACs under the master key) in SQL leaks nothing usable through timing: which byte of two HMACs
 * differs says nothing about the secret. An agent whose secret has no fingerprint yet (stored before
 * they were kept) is checked by decrypting it in constant time (`TelegramWebhookAuth`), which also
 * stores the fingerprint for the next calls.
 *
 * Calls arriving together (a busy bot, several bots) share the work (group commit): one statement
 * authenticates and stores them all with their chats (and their events, with `eventsStatement`);
 * otherwise one `send` carries all their events, and one statement marks them sent, after the call
 * has resolved. A call resolves once its own update is stored and its event sent (or left for the
 * sweeper); it throws only when the write failed (the webhook then answers 5xx, so Telegram delivers
 * it again).
 *
 * @example
 * const ingress = new TelegramIngress({ db, keyring, sendEvent, logger, eventsStatement: executor.statement });
 * const outcome = await ingress.receive(agentId, c.req.header('x-telegram-bot-api-secret-token'), await c.req.json());
 */
export class TelegramIngress {
  private readonly db: Database;
  private readonly keyring: Keyring;
  private readonly sendEvent: SendEvent;
  private readonly logger: Logger;
  private readonly writes: GroupCommit<IngressCall, CallResult>;
  private readonly marks: GroupCommit<string, undefined>;
  private readonly eventsStatement: StatementWithEvents | undefined;
  private readonly decryptingAuth: TelegramWebhookAuth;

  constructor(deps: {
    db: Database;
    keyring: Keyring;
    sendEvent: SendEvent;
    logger: Logger;
    eventsStatement?: StatementWithEvents | undefined;
  }) {
    this.db = deps.db;
    this.keyring = deps.keyring;
    this.sendEvent = deps.sendEvent;
    this.logger = deps.logger;
    this.eventsStatement = deps.eventsStatement;
    this.decryptingAuth = new TelegramWebhookAuth({ db: deps.db, keyring: deps.keyring });
    // Two batches in flight, not more: bigger batches did better than more of them (bench:ingress).
    this.writes = new GroupCommit((calls) => this.store(calls), { maxParallel: 2 });
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

  /**
   * A webhook call for `agentId` presenting `presented` as its secret_token: `unauthorized` for a
   * wrong secret and for an agent that does not exist alike (the caller's 401 says nothing about
   * which); an agent that is not answering gets its update acknowledged, not stored.
   */
  async receive(
    agentId: string,
    presented: string | undefined,
    raw: unknown,
    logger: Logger = this.logger,
  ): Promise<IngestOutcome> {
    if (!presented || !isUuid(agentId)) return { result: 'unauthorized' };
    const read = readUpdate(raw);
    const fingerprints = webhookSecretFingerprints(this.keyring, presented);
    const done = await this.writes.submit({ agentId, fingerprints, update: read.row });
    if (done.verdict === 'unverified') {
      const agent = await this.decryptingAuth.authenticate(agentId, presented);
      if (!agent) return { result: 'unauthorized' };
      if (!agent.answering) return { result: 'ignored', reason: 'not_answering' };
      return this.ingest(agent, raw, logger);
    }
    if (done.verdict !== 'ok') return { result: 'unauthorized' };
    if (!done.answering) return { result: 'ignored', reason: 'not_answering' };
    return outcomeOf(agentId, read, done, logger);
  }

  /** An update for an agent the caller knows (long polling): stored whatever the agent's status. */
  async ingest(agent: { id: string }, raw: unknown, logger: Logger = this.logger): Promise<IngestOutcome> {
    const read = readUpdate(raw);
    if (!read.row) return outcomeOf(agent.id, read, undefined, logger);
    const done = await this.writes.submit({ agentId: agent.id, fingerprints: undefined, update: read.row });
    // The agent was deleted since the caller read it: there is nobody to answer.
    if (done.verdict !== 'trusted') return { result: 'ignored', reason: 'not_answering' };
    return outcomeOf(agent.id, read, done, logger);
  }

  private markFailed(ids: string[], error: unknown): void {
    this.logger.warn(
      { updates: ids.length, err: error instanceof Error ? error.message : String(error) },
      'updates not marked sent: the sweeper will send their events again (the engine drops the copies)',
    );
  }

  private async store(calls: IngressCall[]): Promise<CallResult[]> {
    // Each update's message id is chosen here, so its event can be built before the write.
    const messageIds = calls.map(() => randomUUID());
    const statement = callWrites(calls, messageIds, this.eventsStatement !== undefined);
    if (this.eventsStatement) {
      // One statement: the updates with their events, or neither (the webhook answers 5xx). The
      // agent's customer, which only the statement reads, is merged into each event's data.
      const events = calls.flatMap((call, index) =>
        call.update ? [eventOf(call.agentId, call.update, messageIds[index] as string)] : [],
      );
      const rows = await this.eventsStatement<ResultRow>(statement, events);
      return resultsOf(calls, rows, true);
    }
    const rows = await selectRows<ResultRow>(this.db, sql`with ${statement.writes} ${statement.select}`);
    const stored = rows.filter((row) => row.message_id !== null);
    if (stored.length === 0) return resultsOf(calls, rows, false);
    let eventSent = false;
    try {
      await this.sendEvent(
        stored.map((row) => {
          const call = calls[row.ord] as IngressCall;
          return eventOf(call.agentId, call.update as UpdateRow, row.message_id as string, row.customer_id);
        }),
      );
      eventSent = true;
    } catch (error) {
      this.logger.error(
        {
          agentIds: [...new Set(stored.map((row) => calls[row.ord]?.agentId))],
          updates: stored.length,
          err: error instanceof Error ? error.message : String(error),
        },
        'updates stored, events not sent: left for the sweeper',
      );
    }
    // Marked off the request's path, many batches in one statement: a mark that never lands only
    // makes the sweeper send the event again, with the same id, which the engine drops.
    if (eventSent) for (const row of stored) void this.marks.submit(row.message_id as string);
    return resultsOf(calls, rows, eventSent);
  }
}

/** The update a call carries, or why there is none to store. */
function readUpdate(raw: unknown): ReadUpdate {
  const parsed = TelegramUpdateSchema.safeParse(raw);
  if (!parsed.success)
    return { row: undefined, reason: 'malformed', issues: parsed.error.issues.slice(0, 3) };
  const update = parsed.data;
  const found = updateMessage(update);
  if (!found) return { row: undefined, reason: 'no_message' };
  const { message } = found;
  const text = message.text ?? message.caption ?? null;
  return {
    row: {
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
    },
  };
}

/** What an authenticated call with an answering agent (or a known one) comes to. */
function outcomeOf(
  agentId: string,
  read: ReadUpdate,
  done: CallResult | undefined,
  logger: Logger,
): IngestOutcome {
  if (!read.row) {
    if (read.reason === 'malformed') {
      logger.warn({ agentId, issues: read.issues }, 'malformed Telegram update acknowledged');
    }
    return { result: 'ignored', reason: read.reason };
  }
  return done?.messageId
    ? { result: 'stored', messageId: done.messageId, eventSent: done.eventSent }
    : { result: 'duplicate' };
}

function eventOf(agentId: string, update: UpdateRow, messageId: string, customerId?: string): JobEvent {
  return updateReceivedEvent({
    agentId,
    ...(customerId ? { customerId } : {}),
    messageId,
    chatId: update.chat.id,
    updateId: update.updateId,
  });
}

interface ResultRow extends Record<string, unknown> {
  ord: number;
  verdict: CallResult['verdict'];
  answering: boolean;
  message_id: string | null;
  customer_id: string;
}

/**
 * Each call's result; a call with no row named an agent that does not exist. A call's message id is
 * its own (a second copy of an update in one batch stores nothing, and gets none).
 */
function resultsOf(calls: IngressCall[], rows: ResultRow[], eventSent: boolean): CallResult[] {
  const byOrd = new Map(rows.map((row) => [row.ord, row]));
  return calls.map((_, ord): CallResult => {
    const row = byOrd.get(ord);
    if (!row) return { verdict: 'unauthorized', answering: false, messageId: undefined, eventSent: false };
    return {
      verdict: row.verdict,
      answering: row.answering,
      messageId: row.message_id ?? undefined,
      eventSent,
    };
  });
}

/**
 * The statement parts judging each call and storing the updates not stored yet, with their chats
 * (`sent`: already marked as sent, their events being written with them). `messageIds[i]` is the id
 * call i's update is stored under; the gate yields the events of the updates stored (not of a
 * redelivery), with their agent's customer.
 */
function callWrites(calls: IngressCall[], messageIds: string[], sent: boolean): WritesWithEvents {
  const input = calls.map((call, ord) => {
    const update = call.update;
    return {
      ord,
      id: messageIds[ord],
      event_id: update ? `${call.agentId}:${update.updateId}` : null,
      agent_id: call.agentId,
      fingerprints: call.fingerprints ?? null,
      store: update !== undefined,
      chat_id: update?.chat.id,
      update_id: update?.updateId,
      telegram_message_id: update?.telegramMessageId,
      from_user_id: update?.fromUserId,
      from_username: update?.fromUsername,
      text: update?.text,
      update: update?.update,
      is_command: update?.isCommand,
      chat_type: update?.chat.type,
      chat_title: update?.chat.title,
      chat_username: update?.chat.username,
    };
  });
  // Each call's verdict; then the messages (a redelivery inserts nothing, and then nothing else
  // happens), each chat as Telegram describes it now (its latest update; rewritten only when that
  // differs), and the agents' last-message time (at most once a second).
  return {
    writes: sql`input as (
            select * from jsonb_to_recordset(${JSON.stringify(input)}::jsonb) as x(
              ord int, id uuid, event_id text, agent_id uuid, fingerprints jsonb, store boolean,
              chat_id bigint, update_id bigint, telegram_message_id bigint, from_user_id bigint,
              from_username text, text text, update jsonb, is_command boolean, chat_type text,
              chat_title text, chat_username text)),
          judged as (
            select i.ord, a.customer_id,
              case
                when i.fingerprints is null then 'trusted'
                when cr.id is null then 'unauthorized'
                when cr.fingerprint is null then 'unverified'
                when cr.fingerprint = i.fingerprints ->> cr.key_version::text then 'ok'
                else 'unauthorized'
              end as verdict,
              a.status = 'running' and cu.status = 'active' as answering
            from input i
            join agents a on a.id = i.agent_id
            join customers cu on cu.id = a.customer_id
            left join credentials cr on cr.agent_id = i.agent_id and cr.kind = 'telegram_webhook'),
          m as (
            insert into telegram_messages (id, agent_id, customer_id, chat_id, update_id, telegram_message_id,
              direction, from_user_id, from_username, text, update, is_command, event_sent_at)
            select i.id, i.agent_id, j.customer_id, i.chat_id, i.update_id, i.telegram_message_id,
              'inbound'::message_direction, i.from_user_id, i.from_username, i.text, i.update, i.is_command,
              ${sent ? sql`now()` : sql`null`}::timestamptz
            from input i join judged j on j.ord = i.ord
            where i.store and (j.verdict = 'trusted' or (j.verdict = 'ok' and j.answering))
            order by i.ord
            on conflict (agent_id, update_id) do nothing
            returning id, agent_id, customer_id, update_id),
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
    gate: sql`select i.event_id as external_id, jsonb_build_object('customerId', m.customer_id) as data
              from input i join m on m.id = i.id`,
    select: sql`select j.ord, j.verdict, j.answering, j.customer_id, m.id as message_id
                from judged j join input i on i.ord = j.ord left join m on m.id = i.id`,
  };
}
