import { setTimeout as sleep } from 'node:timers/promises';
import { and, eq, sql } from 'drizzle-orm';
import type { Api } from 'grammy';
import { recordChatMigration } from '../conversation/chat-migration';
import { readCredentialSecret } from '../credentials';
import type { Keyring } from '../crypto';
import type { Database } from '../db/client';
import { preparedQuery } from '../db/prepared';
import { telegramChats, telegramMessages } from '../db/schema';
import { createTelegramApi } from '../telegram/api';
import { classifyTelegramError, migratedChatIdOf, type SendFailure, sendFailureOf } from '../telegram/errors';
import type { InboundRef, ReplyTarget } from './types';

export interface SendDeps {
  db: Database;
  keyring: Keyring;
  telegramApiRoot: string;
}

/**
 * Claude's usage, stored with the first message of the answer it paid for. `inputTokens` is Anthropic's
 * `input_tokens`, which leaves out the system prompt's tokens read from or written to the prompt cache.
 */
export interface ReplyUsage {
  model: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
}

export interface OutgoingChunk {
  /** Telegram HTML; absent for fixed plain-text notices. */
  html?: string | undefined;
  plain: string;
  /** What the history stores: the Markdown source (the plain text for notices). */
  markdown: string;
}

export type ChunkResult =
  | { status: 'sent'; outboundId: string; telegramMessageId: number; format: 'html' | 'plain' }
  | SendFailure;

/** grammY's Api for the agent's bot, or undefined when the token is gone. */
export async function agentTelegramApi(
  deps: SendDeps,
  agentId: string,
  timeoutMs = 15_000,
): Promise<Api | undefined> {
  const token = await readCredentialSecret(deps.db, deps.keyring, agentId, 'telegram');
  return token ? createTelegramApi(token, { apiRoot: deps.telegramApiRoot, timeoutMs }) : undefined;
}

/**
 * Sends one message of a reply and stores it as an outbound row (with `usage` when given). HTML first;
 * when Telegram rejects the entities, the same chunk again as plain text. The first chunk of a group
 * answer replies to the triggering message (and is still sent if that message was deleted); in a
 * discussion group's comment thread every chunk does, as only a reply stays in the thread. A group
 * upgraded to a supergroup since gets it at its new id (recorded, so the history follows). Failures
 * come back classified: the caller decides between retrying after Telegram's `retry_after`, retrying,
 * stopping quietly (blocked) and failing.
 */
export async function sendReplyChunk(
  deps: SendDeps,
  input: {
    ref: InboundRef;
    target: ReplyTarget;
    chunk: OutgoingChunk;
    first: boolean;
    usage?: ReplyUsage | undefined;
  },
): Promise<ChunkResult> {
  const { ref, target, chunk } = input;
  const api = await agentTelegramApi(deps, ref.agentId);
  if (!api) return { status: 'failed', description: 'the Telegram bot token was removed' };
  const other = {
    ...(target.messageThreadId === undefined ? {} : { message_thread_id: target.messageThreadId }),
    ...((input.first || target.everyChunkReplies) && target.replyToMessageId !== undefined
      ? { reply_parameters: { message_id: target.replyToMessageId, allow_sending_without_reply: true } }
      : {}),
  };

  let chatId = target.chatId;
  let outcome = await attemptChunk(api, chatId, chunk, other);
  if ('movedTo' in outcome) {
    // Outside the Telegram error handling: a database error here is the step's retry, not a failed send.
    await recordChatMigration(deps.db, {
      agentId: ref.agentId,
      fromChatId: chatId,
      toChatId: outcome.movedTo,
    });
    // The old chat's message ids and topics mean nothing in the new one: a plain message there.
    chatId = outcome.movedTo;
    outcome = await attemptChunk(api, chatId, chunk, {});
    // A supergroup is never moved again; should Telegram say so, the chunk fails rather than loops.
    if ('movedTo' in outcome) {
      return { status: 'failed', description: `the chat moved again, to ${outcome.movedTo}` };
    }
  }
  if ('status' in outcome) {
    if (outcome.status === 'blocked') await markChatBlocked(deps.db, ref.agentId, chatId);
    return outcome;
  }
  const { sent } = outcome;

  const outboundId = await storeSentChunk(deps.db, {
    ref,
    chatId,
    telegramMessageId: sent.messageId,
    text: chunk.markdown,
    status: 'sent',
    usage: input.usage,
  });
  return { status: 'sent', outboundId, telegramMessageId: sent.messageId, format: sent.format };
}

/** The waits between tries to store a chunk Telegram has accepted (about 7.5 s in all). */
const STORE_SENT_RETRY_DELAYS_MS = [100, 400, 1_000, 2_000, 4_000];

/**
 * Stores the row of a chunk Telegram has already accepted. A failure here fails the step, and its
 * retry would send the chunk again (the end user reads it twice): a brief database error (a dropped
 * connection, a failover) is waited out here instead.
 */
async function storeSentChunk(db: Database, input: Parameters<typeof storeOutbound>[1]): Promise<string> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await storeOutbound(db, input);
    } catch (error) {
      const delay = STORE_SENT_RETRY_DELAYS_MS[attempt];
      if (delay === undefined) throw error;
      await sleep(delay);
    }
  }
}

type SendOptions = NonNullable<Parameters<Api['sendMessage']>[2]>;

/** One delivery of the chunk: sent, Telegram's answer that the group became a supergroup, or a failure. */
async function attemptChunk(
  api: Api,
  chatId: number,
  chunk: OutgoingChunk,
  other: SendOptions,
): Promise<{ sent: Delivered } | { movedTo: number } | SendFailure> {
  try {
    return { sent: await deliverChunk(api, chatId, chunk, other) };
  } catch (error) {
    const movedTo = migratedChatIdOf(error);
    return movedTo === undefined ? sendFailureOf(error) : { movedTo };
  }
}

interface Delivered {
  messageId: number;
  format: 'html' | 'plain';
}

/** One sendMessage of a chunk: HTML, or plain text when it has none or Telegram rejects its entities. */
async function deliverChunk(
  api: Api,
  chatId: number,
  chunk: OutgoingChunk,
  other: SendOptions,
): Promise<Delivered> {
  if (chunk.html !== undefined) {
    try {
      const sent = await api.sendMessage(chatId, chunk.html, { ...other, parse_mode: 'HTML' });
      return { messageId: sent.message_id, format: 'html' };
    } catch (error) {
      if (classifyTelegramError(error).kind !== 'bad_entities') throw error;
    }
  }
  const sent = await api.sendMessage(chatId, chunk.plain, other);
  return { messageId: sent.message_id, format: 'plain' };
}

/** One outbound row: a sent message, or (status failed) an answer that could not be delivered. */
export async function storeOutbound(
  db: Database,
  input: {
    ref: InboundRef;
    /** The chat it went to, when not the inbound message's (a group upgraded to a supergroup since). */
    chatId?: number | undefined;
    telegramMessageId: number | null;
    text: string;
    status: 'sent' | 'failed';
    usage?: ReplyUsage | undefined;
  },
): Promise<string> {
  const { ref, usage } = input;
  const [row] = await insertOutbound(db).execute({
    agentId: ref.agentId,
    customerId: ref.customerId,
    chatId: input.chatId ?? ref.chatId,
    telegramMessageId: input.telegramMessageId,
    text: input.text,
    status: input.status,
    replyToId: ref.messageId,
    model: usage?.model ?? null,
    inputTokens: usage?.inputTokens ?? null,
    outputTokens: usage?.outputTokens ?? null,
    cacheReadTokens: usage?.cacheReadTokens ?? null,
    cacheCreationTokens: usage?.cacheCreationTokens ?? null,
  });
  if (!row) throw new Error('the outbound message was not stored');
  return row.id;
}

const insertOutbound = preparedQuery((db) =>
  db
    .insert(telegramMessages)
    .values({
      agentId: sql.placeholder('agentId'),
      customerId: sql.placeholder('customerId'),
      chatId: sql.placeholder('chatId'),
      telegramMessageId: sql.placeholder('telegramMessageId'),
      direction: 'outbound',
      text: sql.placeholder('text'),
      status: sql.placeholder('status'),
      replyToId: sql.placeholder('replyToId'),
      model: sql.placeholder('model'),
      inputTokens: sql.placeholder('inputTokens'),
      outputTokens: sql.placeholder('outputTokens'),
      cacheReadTokens: sql.placeholder('cacheReadTokens'),
      cacheCreationTokens: sql.placeholder('cacheCreationTokens'),
    })
    .returning({ id: telegramMessages.id })
    .prepare('reply_insert_outbound'),
);

async function markChatBlocked(db: Database, agentId: string, chatId: number): Promise<void> {
  await db
    .update(telegramChats)
    .set({ blockedAt: sql`now()` })
    .where(and(eq(telegramChats.agentId, agentId), eq(telegramChats.chatId, chatId)));
}
