import { and, eq, gt, inArray, isNotNull, isNull, lt, ne, or, type SQL, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import { recordChatMigration } from '../conversation/chat-migration';
import { commandText } from '../conversation/commands';
import { resetConversation } from '../conversation/history';
import type { Database, Queryable } from '../db/client';
import { filterOnly, preparedQuery } from '../db/prepared';
import { agents, customers, telegramChats, telegramMessages } from '../db/schema';
import { pairingCodeMessage, pairingLimitMessage, requestPairing } from '../pairing';
import { decideAccess } from '../policy/access';
import type { RateLimiter } from '../ratelimit/limiter';
import { checkMessageQuota, checkTokenBudget, QUOTA_NOTICE, TOKEN_BUDGET_NOTICE } from '../ratelimit/quota';
import {
  attachmentOf,
  chatMigrationOf,
  forumTopicOf,
  isAddressedToBot,
  messageText,
  parseCommand,
  stripBotMention,
  type TelegramMessage,
  TelegramUpdateSchema,
  typingThreadOf,
  updateMessage,
  withAttachmentNote,
} from '../telegram/updates';
import type { InboundDecision, InboundRef, ReplyTarget, SkipReason } from './types';

export interface DecideDeps {
  db: Database;
  messageLimiter: RateLimiter;
  /** Pairing codes (default: random); tests hand in a fixed sequence. */
  generatePairingCode?: (() => string) | undefined;
}

/** The answer to a message without text (photo, sticker, voice...) in a private chat. */
export const TEXT_ONLY_NOTICE = 'I can only read text messages for now. Please send your question as text.';

/** An earlier message older than this no longer holds later ones back (a stuck row must not block a chat). */
export const TURN_WAIT_WINDOW_MS = 10 * 60_000;

/**
 * Whether an earlier message of the same chat (or of the chat it was upgraded from or to) is being
 * answered right now (claimed, not settled), or its run is waiting for its turn, as a boolean column.
 * Inngest's concurrency limits executing steps, not runs: between two steps of one run, the next
 * message's run may take the chat's slot, and must then wait for the first answer to go out; and of
 * two runs waiting, the earlier message's goes first. An earlier message that no run has reached yet
 * is not waited for: its run is queued behind this one (the embedded engine holds the slot for a
 * whole run), and waiting would only stall both.
 */
function earlierMessagePending(db: Queryable): SQL<boolean> {
  const current = alias(telegramMessages, 'current');
  const earlierIn = (chatId: SQL) =>
    db
      .select({ id: telegramMessages.id })
      .from(telegramMessages)
      .innerJoin(current, eq(current.id, sql.placeholder('messageId')))
      .where(
        and(
          eq(telegramMessages.agentId, sql.placeholder('agentId')),
          sql`${telegramMessages.chatId} = ${chatId}`,
          eq(telegramMessages.direction, 'inbound'),
          or(
            eq(telegramMessages.status, 'processing'),
            and(eq(telegramMessages.status, 'received'), isNotNull(telegramMessages.replyRunId)),
          ),
          ne(telegramMessages.id, sql.placeholder('messageId')),
          gt(telegramMessages.createdAt, sql`${sql.placeholder('waitedSince')}::timestamptz`),
          or(
            lt(telegramMessages.createdAt, current.createdAt),
            and(
              eq(telegramMessages.createdAt, current.createdAt),
              lt(telegramMessages.updateId, current.updateId),
            ),
          ),
        ),
      )
      .limit(1);
  // A group upgraded to a supergroup is one conversation under two chat ids (two lanes): a message in
  // either waits for a pending one of the other too. One lookup per chat, each chat an equality (a
  // scalar subquery, null when there is no move): with the three in a list, a plan made while the
  // table was small read every row of the agent (see filterOnly).
  const movedFrom = sql`(select ${telegramChats.migratedFromChatId} from ${telegramChats}
      where ${telegramChats.agentId} = ${sql.placeholder('agentId')} and ${telegramChats.chatId} = ${sql.placeholder('chatId')})`;
  const movedTo = sql`(select ${telegramChats.chatId} from ${telegramChats}
      where ${telegramChats.agentId} = ${sql.placeholder('agentId')} and ${telegramChats.migratedFromChatId} = ${sql.placeholder('chatId')}
      limit 1)`;
  return sql<boolean>`(exists(${earlierIn(sql`${sql.placeholder('chatId')}`)})
    or exists(${earlierIn(movedFrom)}) or exists(${earlierIn(movedTo)}))`;
}

/** The agent, its customer's status and limits, and whether an earlier message of the chat is being answered. */
const readAgentAndTurn = preparedQuery((db) =>
  db
    .select({
      agent: agents,
      customerStatus: customers.status,
      limits: {
        plan: customers.plan,
        apiRequestsPerHour: customers.apiRequestsPerHour,
        messagesPerDay: customers.messagesPerDay,
      },
      earlierPending: earlierMessagePending(db),
    })
    .from(agents)
    .innerJoin(customers, eq(customers.id, agents.customerId))
    .where(eq(agents.id, sql.placeholder('agentId')))
    .prepare('reply_read_agent_and_turn'),
);

/**
 * Marks a message whose run waits for its turn (still `received`): a later message of the chat
 * waits for it in turn. Written once, on the first wait.
 */
const markWaiting = preparedQuery((db) =>
  db
    .update(telegramMessages)
    .set({ replyRunId: sql`${sql.placeholder('runId')}` })
    .where(
      and(
        eq(telegramMessages.id, sql.placeholder('messageId')),
        eq(telegramMessages.status, 'received'),
        isNull(telegramMessages.replyRunId),
      ),
    )
    .prepare('reply_mark_waiting'),
);

/** Claims a message for a run: one not answered yet, or already this run's (a retried step). */
const claimMessage = preparedQuery((db) =>
  db
    .update(telegramMessages)
    .set({ status: 'processing', replyRunId: sql`${sql.placeholder('runId')}` })
    .where(
      and(
        eq(telegramMessages.id, sql.placeholder('messageId')),
        // Found by its primary key whatever the table held when the statement was planned.
        filterOnly(eq(telegramMessages.agentId, sql.placeholder('agentId'))),
        eq(telegramMessages.direction, 'inbound'),
        or(
          inArray(telegramMessages.status, ['received', 'failed']),
          and(
            eq(telegramMessages.status, 'processing'),
            eq(telegramMessages.replyRunId, sql.placeholder('runId')),
          ),
        ),
      ),
    )
    .returning()
    .prepare('reply_claim_message'),
);

/** How far apart the items of one album may be stored and still count as one (they come within seconds). */
const ALBUM_WINDOW_MS = 10 * 60_000;
/**
 * The turns (a second each) an uncaptioned album item with no sibling stored yet waits before it
 * speaks for the album: Telegram sends the items within a second or so, over parallel connections,
 * the captioned one possibly after it.
 */
export const ALBUM_WAIT_TURNS = 2;

/**
 * Another item of the same album (media_group_id) in the chat that speaks for it: an earlier one,
 * or one with a caption. Telegram sends an album as one message per item, usually captioning one.
 */
const readAlbumSibling = preparedQuery((db) =>
  db
    .select({ id: telegramMessages.id })
    .from(telegramMessages)
    .where(
      and(
        eq(telegramMessages.agentId, sql.placeholder('agentId')),
        sql`${telegramMessages.chatId} = ${sql.placeholder('chatId')}`,
        sql`${telegramMessages.createdAt} > ${sql.placeholder('since')}::timestamptz`,
        eq(telegramMessages.direction, 'inbound'),
        ne(telegramMessages.id, sql.placeholder('messageId')),
        sql`${telegramMessages.update} -> 'message' ->> 'media_group_id' = ${sql.placeholder('mediaGroupId')}`,
        or(
          sql`${telegramMessages.telegramMessageId} < ${sql.placeholder('telegramMessageId')}`,
          sql`coalesce(${telegramMessages.text}, '') <> ''`,
        ),
      ),
    )
    .limit(1)
    .prepare('reply_album_sibling'),
);

/** The statements of a decision on every message, for the test of their plans (test/conversation/plans.test.ts). */
export const decideStatements = { readAgentAndTurn, claimMessage, readAlbumSibling };

/**
 * Decides what one stored inbound message gets: nothing, a fixed notice, a Claude answer, or `wait`
 * while an earlier message of the chat is unanswered (unless `keepOrder` is false), or, with
 * `albumWait`, while an uncaptioned album item has no sibling to leave the answer to yet. In order:
 * claim the message for this run (a duplicate or replayed run of an answered message stops here), the
 * agent must be running and its customer active, edits and bots' messages are not answered, the access
 * policy (pairing hands out a code), the bot's commands, the daily token budget, then the message
 * quota, which counts the message: the caller runs this once per message (one step).
 */
export async function decideInbound(
  deps: DecideDeps,
  ref: InboundRef,
  runId: string,
  now: Date,
  options: { keepOrder?: boolean; albumWait?: boolean } = {},
): Promise<InboundDecision> {
  const { db } = deps;
  // The agent, its customer and (keeping the chat's order) whether an earlier message is being
  // answered, in one read; the agent checks come after the claim, so a skipped message is settled.
  const [row] = await readAgentAndTurn(db).execute({
    agentId: ref.agentId,
    chatId: ref.chatId,
    messageId: ref.messageId,
    waitedSince: new Date(now.getTime() - TURN_WAIT_WINDOW_MS).toISOString(),
  });
  if (row?.earlierPending && options.keepOrder !== false) {
    await markWaiting(db).execute({ messageId: ref.messageId, runId });
    return { action: 'wait' };
  }
  const [claimed] = await claimMessage(db).execute({
    messageId: ref.messageId,
    agentId: ref.agentId,
    runId,
  });
  if (!claimed) return { action: 'skip', reason: 'already_handled' };

  const skip = async (reason: SkipReason): Promise<InboundDecision> => {
    await settleInbound(db, ref.messageId, 'ignored');
    return { action: 'skip', reason };
  };

  if (row?.agent.status !== 'running') return skip('agent_not_running');
  if (row.customerStatus !== 'active') return skip('customer_suspended');
  const { agent } = row;

  const parsed = TelegramUpdateSchema.safeParse(claimed.update);
  const found = parsed.success ? updateMessage(parsed.data) : undefined;
  if (!found) return skip('no_text');
  const migration = chatMigrationOf(found.message);
  if (migration) {
    await recordChatMigration(db, { agentId: agent.id, ...migration });
    return skip('chat_migrated');
  }
  if (found.edited) return skip('edited');
  const { message } = found;
  const sender = message.from;
  if (!sender) return skip('no_sender');
  // A channel post copied into its discussion group is not a person: its `from` is Telegram's service
  // user 777000, which is not marked as a bot.
  if (message.is_automatic_forward) return skip('automatic_forward');
  // An anonymous group admin, or a user posting as their channel: `from` is Telegram's stand-in bot
  // and `sender_chat` the chat they speak as.
  const speaksAs = message.sender_chat;
  if (sender.is_bot && !speaksAs) return skip('from_bot');
  const { text } = messageText(message);
  // A service message (a pin, a member joining): nothing to answer, and no pairing code for it.
  const blank = text.trim() === '';
  if (blank && attachmentOf(message) === undefined) return skip('no_text');

  // One answer per album: its uncaptioned items are left to the item with the caption, or to the
  // first when none has one (one "text only" notice, one pairing code).
  let albumSpeaker = false;
  if (blank && message.media_group_id) {
    const [sibling] = await readAlbumSibling(db).execute({
      agentId: agent.id,
      chatId: message.chat.id,
      since: new Date(claimed.createdAt.getTime() - ALBUM_WINDOW_MS).toISOString(),
      messageId: claimed.id,
      mediaGroupId: message.media_group_id,
      telegramMessageId: message.message_id,
    });
    if (sibling) return skip('album_item');
    albumSpeaker = true;
  }

  const botUsername = agent.telegramBotUsername ?? agent.botUsername ?? '';
  const bot = { id: agent.telegramBotId ?? 0, username: botUsername };
  const chatType = message.chat.type;
  const group = chatType === 'group' || chatType === 'supergroup';
  const target = replyTargetOf(message);

  const access = decideAccess(agent, {
    chatType,
    senderId: speaksAs?.id ?? sender.id,
    senderUsername: speaksAs ? speaksAs.username : sender.username,
    addressedToBot: botUsername !== '' && isAddressedToBot(message, bot),
  });
  if (access.action === 'ignore') return skip(access.reason);
  // An album item the bot would answer, with no earlier or captioned item stored yet, waits for them a
  // moment. Still claimed by this run, so the chat's later messages (its siblings) queue behind it.
  if (albumSpeaker && options.albumWait) return { action: 'wait' };
  if (access.action === 'pairing') {
    const pairing = await requestPairing(db, {
      agentId: agent.id,
      telegramUserId: sender.id,
      username: sender.username,
      firstName: sender.first_name,
      chatId: message.chat.id,
      now,
      generateCode: deps.generatePairingCode,
    });
    const text =
      pairing.status === 'limit_reached'
        ? pairingLimitMessage(agent.name)
        : pairingCodeMessage({
            agentName: agent.name,
            code: pairing.code,
            telegramUserId: sender.id,
            expiresAt: pairing.expiresAt,
            now,
          });
    return { action: 'notice', kind: 'pairing', target, text, settle: 'ignored' };
  }

  const command = parseCommand(text, botUsername || undefined);
  if (command) {
    if (command.command === 'reset' || command.command === 'new') {
      // From the command's own arrival: messages sent after it (and still queued) stay in the history.
      await resetConversation(db, {
        agentId: agent.id,
        chatId: message.chat.id,
        topicId: forumTopicOf(message),
        now: claimed.createdAt,
        commandMessageId: claimed.id,
        chatType,
      });
    }
    return {
      action: 'notice',
      kind: 'command',
      target,
      text: commandText(command.command, agent.name),
      settle: 'answered',
    };
  }
  if (claimed.isCommand) {
    // Stored as one of our commands (`/reset@another_bot` in a DM), answered as a message: it and its
    // answer belong to the history, which leaves commands out.
    await db.update(telegramMessages).set({ isCommand: false }).where(eq(telegramMessages.id, claimed.id));
  }
  if (blank) {
    // A photo, sticker or voice note in a private chat: say so rather than stay silent.
    if (chatType !== 'private') return skip('no_text');
    return { action: 'notice', kind: 'unsupported', target, text: TEXT_ONLY_NOTICE, settle: 'ignored' };
  }

  const budget = await checkTokenBudget(db, {
    agentId: agent.id,
    chatId: message.chat.id,
    messageId: claimed.id,
    dailyTokenBudget: agent.dailyTokenBudget,
    now,
  });
  if (!budget.allowed) {
    const agentError = {
      code: 'token_budget_exceeded',
      message: `The agent used its daily token budget (${budget.used} of ${budget.budget} tokens); it answers again after 00:00 UTC.`,
    };
    if (!budget.notify) return skip('token_budget_exceeded');
    return {
      action: 'notice',
      kind: 'token_budget',
      target,
      text: TOKEN_BUDGET_NOTICE,
      settle: 'ignored',
      agentError,
    };
  }

  const quota = await checkMessageQuota(db, deps.messageLimiter, {
    customerId: ref.customerId,
    agentId: agent.id,
    chatId: message.chat.id,
    messageId: claimed.id,
    now,
    customer: row.limits,
  });
  if (!quota.allowed) {
    if (!quota.notify) return skip('quota_exceeded');
    return {
      action: 'notice',
      kind: 'quota',
      target,
      text: QUOTA_NOTICE,
      settle: 'ignored',
      agentError: {
        code: 'quota_exceeded',
        message: `The customer's ${quota.limit} messages for today are used up; answers resume after 00:00 UTC.`,
      },
    };
  }

  const stripped = group && botUsername ? stripBotMention(text, botUsername) : text;
  const said = stripped.trim() === '' ? text : stripped;
  return { action: 'answer', target, text: withAttachmentNote(said, attachmentOf(message)), chatType };
}

/** The inbound message's final status (answered, ignored or failed): it leaves `processing`. Returns when it arrived. */
export async function settleInbound(
  db: Database,
  messageId: string,
  status: 'answered' | 'ignored' | 'failed',
): Promise<Date | undefined> {
  const [row] = await settleMessage(db).execute({ messageId, status });
  return row?.createdAt;
}

const settleMessage = preparedQuery((db) =>
  db
    .update(telegramMessages)
    .set({ status: sql`${sql.placeholder('status')}` })
    .where(eq(telegramMessages.id, sql.placeholder('messageId')))
    .returning({ createdAt: telegramMessages.createdAt })
    .prepare('reply_settle_message'),
);

/** Where the answer to `message` goes: its chat; in groups as a reply to it; in its forum topic. */
export function replyTargetOf(message: TelegramMessage): ReplyTarget {
  const group = message.chat.type === 'group' || message.chat.type === 'supergroup';
  return {
    chatId: message.chat.id,
    replyToMessageId: group ? message.message_id : undefined,
    messageThreadId: forumTopicOf(message),
    typingThreadId: typingThreadOf(message),
    ...(group && message.message_thread_id !== undefined && !message.is_topic_message
      ? { everyChunkReplies: true }
      : {}),
  };
}

/** `replyTargetOf` for a stored raw update; undefined when it holds no message. */
export function replyTargetOfUpdate(raw: unknown): ReplyTarget | undefined {
  const parsed = TelegramUpdateSchema.safeParse(raw);
  const found = parsed.success ? updateMessage(parsed.data) : undefined;
  return found ? replyTargetOf(found.message) : undefined;
}
