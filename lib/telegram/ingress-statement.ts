import { sql } from 'drizzle-orm';
import type { WritesWithEvents } from '../jobs';
import { findJsonFaults, JSON_FAULT_MESSAGES, replaceLoneSurrogates } from '../json-faults';
import { isBotCommandText, TelegramUpdateSchema, updateMessage } from './updates';

/*
 * The statement of TelegramIngress: for a batch of calls, each call's verdict (its webhook secret
 * checked by fingerprint) and the updates stored, with their chats and the gate of their events.
 */

/** What one update needs stored, read from it before any database work. */
export interface UpdateRow {
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
export interface IngressCall {
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
export interface CallResult {
  verdict: 'ok' | 'trusted' | 'unauthorized' | 'unverified';
  /** The agent is running and its customer active. */
  answering: boolean;
  /** The stored message, or undefined (a redelivery, or nothing to store). */
  messageId: string | undefined;
  eventSent: boolean;
}

export type ReadUpdate =
  | { row: UpdateRow }
  | { row: undefined; reason: 'malformed' | 'no_message'; issues?: unknown };

/** The update a call carries, or why there is none to store. */
export function readUpdate(received: unknown): ReadUpdate {
  // One statement stores a whole batch of calls, authenticated or not yet: an update PostgreSQL
  // cannot take would fail every call in it with a 500 (and Telegram delivers a 500'd update
  // again, forever). A NUL cannot be stored at all, and nesting that deep is no Telegram update:
  // acknowledged as malformed. A lone surrogate (jsonb refuses its escape) becomes U+FFFD, so the
  // message is still answered.
  let raw = received;
  let fault = findJsonFaults(raw, { limit: 1 })[0];
  if (fault?.fault === 'lone_surrogate') {
    raw = replaceLoneSurrogates(raw);
    fault = findJsonFaults(raw, { limit: 1 })[0];
  }
  if (fault) {
    return {
      row: undefined,
      reason: 'malformed',
      issues: [{ path: fault.path, message: `the update ${JSON_FAULT_MESSAGES[fault.fault]}` }],
    };
  }
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
      isCommand: isBotCommandText(text ?? undefined),
    },
  };
}

export interface ResultRow extends Record<string, unknown> {
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
export function resultsOf(calls: IngressCall[], rows: ResultRow[], eventSent: boolean): CallResult[] {
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
 * call i's update is stored under and `eventIds[i]` its event's; the gate yields the events of the
 * updates stored (not of a redelivery), with their agent's customer.
 */
export function callWrites(
  calls: IngressCall[],
  messageIds: string[],
  eventIds: (string | undefined)[],
  sent: boolean,
): WritesWithEvents {
  const input = calls.map((call, ord) => {
    const update = call.update;
    return {
      ord,
      id: messageIds[ord],
      event_id: eventIds[ord] ?? null,
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
              direction, from_user_id, from_username, text, update, is_command, event_sent_at, created_at)
            select i.id, i.agent_id, j.customer_id, i.chat_id, i.update_id, i.telegram_message_id,
              'inbound'::message_direction, i.from_user_id, i.from_username, i.text, i.update, i.is_command,
              ${sent ? sql`now()` : sql`null`}::timestamptz,
              -- Each a microsecond after the one before it (the batch is in update_id order): a /reset
              -- forgets up to its own instant, so what was sent just after it must not share that.
              now() + i.ord * interval '1 microsecond'
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
