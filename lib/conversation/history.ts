import { and, desc, eq, ne, notInArray, or, type SQL, type SQLWrapper, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import type { Queryable } from '../db/client';
import { filterOnly, preparedQuery } from '../db/prepared';
import { telegramChats, telegramMessages } from '../db/schema';
import type { TelegramChatType } from '../policy/access';
import { ATTACHMENT_FIELDS, attachmentWords, stripBotMention, withAttachmentNote } from '../telegram/updates';
import { contextWindowFor } from './context-window';
import { estimateMessageTokens, estimateTextTokens } from './tokens';

/** One turn of a Claude Messages API request (assignable to the SDK's `MessageParam`). */
export interface ConversationMessage {
  role: 'user' | 'assistant';
  content: string;
}

export interface ConversationInput {
  agentId: string;
  chatId: number;
  /** The stored inbound message (telegram_messages.id) being answered: the conversation ends with it. */
  currentMessageId: string;
  /** Its text as Claude should see it, when that differs from the stored text (a mention removed). */
  currentText?: string | undefined;
  model: string;
  maxTokens: number;
  systemPrompt: string;
  /** The bot's username: its @mentions are removed from earlier group messages, as from the current one. */
  botUsername?: string | undefined;
  /** Decides whether user turns carry the sender's name; default: the chat row's type, else by the id's sign. */
  chatType?: TelegramChatType | undefined;
  /** At most this many turns, the current one included, whatever the token budget (cost). */
  maxTurns?: number | undefined;
  /** Tokens kept free besides `maxTokens` and the system prompt, for the estimate's error. */
  safetyMarginTokens?: number | undefined;
}

export interface Conversation {
  /** Starts with a user turn, alternates, ends with the current message. */
  messages: ConversationMessage[];
  /** Estimated input tokens of the request: system prompt and messages. */
  estimatedInputTokens: number;
  /** Whether older history (after the last reset) was left out for the budget or the turn cap. */
  truncated: boolean;
}

export const DEFAULT_MAX_TURNS = 50;
export const DEFAULT_SAFETY_MARGIN_TOKENS = 4_096;
/** Rows read per turn allowed: consecutive messages of one role merge into one turn. */
const ROWS_PER_TURN = 4;
/** The system prompt's own framing around its text. */
const SYSTEM_OVERHEAD_TOKENS = 8;
const MAX_NAME_LENGTH = 64;

interface TelegramFrom {
  first_name?: unknown;
  last_name?: unknown;
  username?: unknown;
}

interface HistoryRow {
  id: string;
  direction: 'inbound' | 'outbound';
  text: string | null;
  fromUserId: number | null;
  fromUsername: string | null;
  from: TelegramFrom | null;
  /** The field of the message's attachment (`photo`...): a caption is read with its note, as when it was new. */
  attachment: string | null;
}

/** The message of a stored update, edited or not. */
const storedMessage = sql`coalesce(${telegramMessages.update} -> 'message', ${telegramMessages.update} -> 'edited_message')`;

const rowColumns = {
  id: telegramMessages.id,
  direction: telegramMessages.direction,
  text: telegramMessages.text,
  fromUserId: telegramMessages.fromUserId,
  fromUsername: telegramMessages.fromUsername,
  // Who spoke: a message sent on behalf of a chat (an anonymous admin, a channel) is named after that chat.
  from: sql<TelegramFrom | null>`case
    when ${telegramMessages.update} #> '{message,sender_chat}' is not null then jsonb_build_object(
      'first_name', ${telegramMessages.update} #>> '{message,sender_chat,title}',
      'username', ${telegramMessages.update} #>> '{message,sender_chat,username}')
    else coalesce(${telegramMessages.update} #> '{message,from}', ${telegramMessages.update} #> '{edited_message,from}')
    end`,
  attachment: sql<string | null>`case ${sql.join(
    // The fields are the constant keys of ATTACHMENT_KINDS: literals keep the statement's parameters few.
    ATTACHMENT_FIELDS.map((name) => {
      const field = sql.raw(`'${name}'`);
      return sql`when ${storedMessage} -> ${field} is not null then ${field}`;
    }),
    sql` `,
  )} end`,
};

/** The forum topic of a stored update (as `forumTopicOf`), else null: the chat's main conversation. */
const topicOfUpdate = (update: SQLWrapper) =>
  sql<number | null>`case when ${update} #>> '{message,is_topic_message}' = 'true'
    then (${update} #>> '{message,message_thread_id}')::bigint end`;

const previousChat = alias(telegramChats, 'previous_chat');
const nextChat = alias(telegramChats, 'next_chat');
const currentTopic = topicOfUpdate(telegramMessages.update);

/**
 * The new chat's last reset, when it came before the current message: an old-group message still
 * queued at the move was sent before any /reset in the new chat, which is not its to forget. (Only the
 * latest reset is stored, but the new chat has none from before the move.)
 */
const nextChatResetAt = sql`case when ${nextChat.historyResetAt} <= ${telegramMessages.createdAt}
  then ${nextChat.historyResetAt} end`;
/** A topic's own reset, or the floor every topic shares when later (`"*"`: resets made before topics had their own). */
const topicResetAt = (topic: SQLWrapper) =>
  sql`greatest((${telegramChats.topicHistoryResetAt} ->> ${topic}::text)::timestamptz,
    (${telegramChats.topicHistoryResetAt} ->> '*')::timestamptz)`;

/**
 * The current message and its chat's row (type, last reset) in one read, with the chat it was upgraded
 * from and the one it was upgraded to (a message of the old group answered after the move: its answer
 * went to the new chat). The last reset is the latest of the linked chats': a /reset handled in one
 * chat's lane after the move was recorded holds in the other. Times go out as ISO 8601 text (JSON's,
 * whatever the DateStyle): PostgreSQL keeps microseconds, a JavaScript Date does not, and one ingress
 * statement stores a batch a microsecond apart.
 */
const readCurrentMessage = preparedQuery((db) =>
  db
    .select({
      ...rowColumns,
      createdAtText: sql<string>`to_json(${telegramMessages.createdAt}) #>> '{}'`,
      chatType: telegramChats.type,
      topicId: currentTopic.mapWith(Number),
      historyResetAt: sql<string | null>`to_json(case when ${currentTopic} is null
          then greatest(${telegramChats.historyResetAt}, ${previousChat.historyResetAt}, ${nextChatResetAt})
          else ${topicResetAt(currentTopic)}
        end) #>> '{}'`,
      migratedFromChatId: telegramChats.migratedFromChatId,
      migratedToChatId: nextChat.chatId,
    })
    .from(telegramMessages)
    .leftJoin(
      telegramChats,
      and(
        eq(telegramChats.agentId, telegramMessages.agentId),
        eq(telegramChats.chatId, telegramMessages.chatId),
      ),
    )
    .leftJoin(
      previousChat,
      and(
        eq(previousChat.agentId, telegramChats.agentId),
        eq(previousChat.chatId, telegramChats.migratedFromChatId),
      ),
    )
    .leftJoin(
      nextChat,
      and(
        eq(nextChat.agentId, telegramMessages.agentId),
        eq(nextChat.migratedFromChatId, telegramMessages.chatId),
      ),
    )
    .where(
      and(
        eq(telegramMessages.id, sql.placeholder('messageId')),
        // Found by its primary key, not in a range of its chat (see filterOnly).
        filterOnly(eq(telegramMessages.agentId, sql.placeholder('agentId'))),
        filterOnly(eq(telegramMessages.chatId, sql.placeholder('chatId'))),
        eq(telegramMessages.direction, 'inbound'),
      ),
    )
    .prepare('history_read_current_message'),
);

const replyTo = alias(telegramMessages, 'reply_to');
/*
 * Where a row sits in the conversation: an inbound message when it arrived, an answer right after the
 * message it answers. Messages that queued while an earlier one was being answered arrive before that
 * answer is written, yet the answer belongs before them, as the user saw it in the chat.
 */
const position = sql<Date>`coalesce(${replyTo.createdAt}, ${telegramMessages.createdAt})`;

/** In the current chat or the ones linked to it by an upgrade (the placeholders `readHistory` takes). */
const inLinkedChats = (chatId: SQLWrapper) =>
  sql`${chatId} in (${sql.placeholder('chatId')}, ${sql.placeholder('previousChatId')}, ${sql.placeholder('nextChatId')})`;
/** Stored after the conversation's last reset (placeholder `resetAt`, null: never reset). */
const afterReset = (createdAt: SQLWrapper) =>
  sql`${createdAt} > coalesce(${sql.placeholder('resetAt')}::timestamptz, '-infinity')`;
/** Stored at or after the history's bound (placeholder `since`, null: unbounded). */
const sinceBound = (createdAt: SQLWrapper) =>
  sql`${createdAt} >= coalesce(${sql.placeholder('since')}::timestamptz, '-infinity')`;

const boundRow = alias(telegramMessages, 'bound_row');
/** How many of the chat's newest user messages the bound looks through: past them, the read is not bounded. */
const BOUND_WINDOW_ROWS_PER_ROW = 10;
/**
 * When the `limit`-th newest user message of the current chat that belongs in the history was sent (null
 * when there are fewer). Such a message sits at its arrival time, so the `limit` newest rows all sit at or
 * after it, and none was stored before it (an answer is stored after the message it answers): a bound
 * on created_at, which the history index serves, where the sort position cannot be bounded.
 * It is looked for among the chat's `boundWindow` newest user messages that are not ignored nor
 * commands, read in the order of their own index (the planner cannot estimate the other filters, and
 * would rather sort the whole chat; a busy group's unaddressed messages are not even read); null
 * when they hold too few.
 */
const readOldestInboundNeeded = preparedQuery((db) => {
  const recent = db
    .select({
      createdAt: boundRow.createdAt,
      id: boundRow.id,
      status: boundRow.status,
      text: boundRow.text,
      update: boundRow.update,
    })
    .from(boundRow)
    .where(
      and(
        eq(boundRow.agentId, sql.placeholder('agentId')),
        eq(boundRow.chatId, sql.placeholder('chatId')),
        // telegram_messages_history_turns_idx's condition, as literals the planner can match to it.
        sql`${boundRow.direction} = 'inbound' and ${boundRow.status} <> 'ignored' and ${boundRow.isCommand} = false`,
        sql`${boundRow.createdAt} <= ${sql.placeholder('currentAt')}::timestamptz`,
        afterReset(boundRow.createdAt),
      ),
    )
    .orderBy(desc(boundRow.createdAt))
    .limit(sql.placeholder('boundWindow'))
    .as('recent');
  return db
    .select({ createdAt: sql<string>`to_json(${recent.createdAt}) #>> '{}'` })
    .from(recent)
    .where(
      and(
        sql`coalesce(${recent.text}, '') <> ''`,
        // Not yet claimed by a run: not history (readHistory), so not counted.
        ne(recent.status, 'received'),
        ne(recent.id, sql.placeholder('currentId')),
        sql`${topicOfUpdate(recent.update)} is not distinct from ${sql.placeholder('topicId')}::bigint`,
      ),
    )
    .orderBy(desc(recent.createdAt))
    .offset(sql.placeholder('boundOffset'))
    .limit(1)
    .prepare('history_read_bound');
});

/**
 * The chat's rows before the current message (since `resetAt`, when set), newest first, only those of
 * the current message's forum topic (`topicId`, null outside topics). `inChats` says which chats'
 * rows: the current one, or also those it was upgraded from (`previousChatId`) and to (`nextChatId`).
 * A chat with no such link (nearly every chat) has a statement of its own, where the chat is an
 * equality: with the list of three, a plan made while the table was small read every row of the agent
 * (the kept plan of a named statement; see filterOnly).
 */
const historyRows = (name: string, inChats: (chatId: SQLWrapper) => SQL) =>
  preparedQuery((db) =>
    db
      .select(rowColumns)
      .from(telegramMessages)
      // Only questions of the linked chats (an answer is stored in its question's chat, or in the one
      // that chat moved to) stored since the bound: any answer the limit keeps sits at its question's time,
      // at or after the bound, so this loses none of them, and the join reads an index range rather
      // than the whole table (the planner cannot tell how few rows the bound leaves).
      .leftJoin(
        replyTo,
        and(
          eq(replyTo.id, telegramMessages.replyToId),
          eq(replyTo.agentId, sql.placeholder('agentId')),
          inChats(replyTo.chatId),
          sinceBound(replyTo.createdAt),
        ),
      )
      .where(
        and(
          eq(telegramMessages.agentId, sql.placeholder('agentId')),
          // An answer whose question the join left out sits before the bound.
          sql`(${telegramMessages.replyToId} is null or ${replyTo.id} is not null)`,
          inChats(telegramMessages.chatId),
          // An answer belongs to the topic of the message it answers.
          sql`coalesce(${topicOfUpdate(telegramMessages.update)}, ${topicOfUpdate(replyTo.update)}) is not distinct from ${sql.placeholder('topicId')}::bigint`,
          ne(telegramMessages.id, sql.placeholder('currentId')),
          // Up to the current message; and a later exchange already answered (its message reached the
          // queue before this one did), which the user saw before this answer.
          sql`(${position} <= ${sql.placeholder('currentAt')}::timestamptz
          or coalesce(${replyTo.status}, ${telegramMessages.status}) = 'answered')`,
          sql`(${sql.placeholder('resetAt')}::timestamptz is null or ${position} > ${sql.placeholder('resetAt')}::timestamptz)`,
          // Implied by the line above (an answer is stored after the message it answers), but indexable:
          // a chat's rows before its reset are not read at all.
          afterReset(telegramMessages.createdAt),
          // Nor those older than the oldest row the limit can reach (`readOldestInboundNeeded`).
          sinceBound(telegramMessages.createdAt),
          eq(telegramMessages.isCommand, false),
          sql`coalesce(${telegramMessages.text}, '') <> ''`,
          or(
            // A user message no run has claimed yet is not history: its own run, queued behind this one,
            // answers it after this (a chat's messages can reach us out of Telegram's order).
            and(
              eq(telegramMessages.direction, 'inbound'),
              notInArray(telegramMessages.status, ['ignored', 'received']),
            ),
            and(
              eq(telegramMessages.direction, 'outbound'),
              notInArray(telegramMessages.status, ['failed', 'ignored']),
              // An answer to a command, to an ignored message or to the current one (a partial answer
              // of an earlier attempt) is not part of the conversation either.
              sql`(${replyTo.id} is null or (${replyTo.isCommand} = false and ${replyTo.status} <> 'ignored' and ${replyTo.id} <> ${sql.placeholder('currentId')}::uuid))`,
            ),
          ),
        ),
      )
      .orderBy(
        desc(position),
        // At one position the answer comes after its message: newest first, so outbound first.
        desc(telegramMessages.direction),
        desc(telegramMessages.createdAt),
        sql`${telegramMessages.telegramMessageId} desc nulls last`,
        desc(telegramMessages.id),
      )
      .limit(sql.placeholder('limit'))
      .prepare(name),
  );

const readHistory = historyRows(
  'history_read_rows',
  (chatId) => sql`${chatId} = ${sql.placeholder('chatId')}`,
);
const readLinkedHistory = historyRows('history_read_linked_rows', inLinkedChats);

/** The statements of a conversation read, for the test of their plans (test/conversation/plans.test.ts). */
export const historyStatements = {
  readCurrentMessage,
  readOldestInboundNeeded,
  readHistory,
  readLinkedHistory,
};

/**
 * The `messages` of the Claude request answering `currentMessageId` in one chat: the newest turns since
 * the chat's last reset that fit the model's context window (minus `maxTokens`, the system prompt and
 * a safety margin) and `maxTurns`. Inbound messages are user turns, outbound ones assistant turns;
 * commands, ignored messages and answers to them, and undelivered answers are left out. Consecutive
 * messages of one role merge with a blank line between them, so roles alternate; the result starts
 * with a user turn. In groups every user message carries its sender's name: `[Alice]: hello`.
 */
export async function buildConversation(db: Queryable, input: ConversationInput): Promise<Conversation> {
  const { agentId, chatId } = input;
  const maxTurns = Math.max(1, Math.trunc(input.maxTurns ?? DEFAULT_MAX_TURNS));

  const [found] = await readCurrentMessage(db).execute({
    messageId: input.currentMessageId,
    agentId,
    chatId,
  });
  if (!found) throw new Error(`message ${input.currentMessageId} is not an inbound message of this chat`);
  const {
    chatType: storedChatType,
    historyResetAt,
    migratedFromChatId,
    migratedToChatId,
    topicId,
    createdAtText,
    ...current
  } = found;
  const currentText = input.currentText ?? current.text;
  if (!currentText) throw new Error(`message ${input.currentMessageId} has no text to answer`);

  const chatType = input.chatType ?? storedChatType ?? (chatId < 0 ? 'group' : 'private');
  const named = chatType === 'group' || chatType === 'supergroup';

  const rowLimit = maxTurns * ROWS_PER_TURN;
  const common = {
    agentId,
    chatId,
    topicId,
    currentId: current.id,
    currentAt: createdAtText,
    resetAt: historyResetAt,
  };
  // A statement of its own, so that the history read is planned knowing the bound (an index range)
  // rather than guessing at a subquery's result and reading the whole chat.
  const [bound] = await readOldestInboundNeeded(db).execute({
    ...common,
    boundOffset: rowLimit,
    boundWindow: (rowLimit + 1) * BOUND_WINDOW_ROWS_PER_ROW,
  });
  const linked = migratedFromChatId !== null || migratedToChatId !== null;
  const fetched: HistoryRow[] = await (linked ? readLinkedHistory : readHistory)(db).execute({
    ...common,
    previousChatId: migratedFromChatId,
    nextChatId: migratedToChatId,
    since: bound?.createdAt ?? null,
    limit: rowLimit + 1,
  });
  // A message stored at the current one's instant is here only if its run claimed it first: it came
  // before in the conversation, whatever its place in Telegram's order.
  const rows = fetched.slice(0, rowLimit);
  let truncated = fetched.length > rowLimit;

  const systemTokens = estimateTextTokens(input.systemPrompt) + SYSTEM_OVERHEAD_TOKENS;
  const budget =
    contextWindowFor(input.model) -
    input.maxTokens -
    systemTokens -
    (input.safetyMarginTokens ?? DEFAULT_SAFETY_MARGIN_TOKENS);

  const last: ConversationMessage = { role: 'user', content: userText(current, currentText, named) };
  let used = estimateMessageTokens(last.content);
  const newestFirst: ConversationMessage[] = [];
  for (const row of rows) {
    const message: ConversationMessage =
      row.direction === 'inbound'
        ? {
            role: 'user',
            content: userText(
              row,
              withAttachmentNote(
                withoutMention(row.text ?? '', input.botUsername),
                attachmentWords(row.attachment),
              ),
              named,
            ),
          }
        : { role: 'assistant', content: row.text ?? '' };
    const cost = estimateMessageTokens(message.content);
    if (used + cost > budget) {
      truncated = true;
      break;
    }
    used += cost;
    newestFirst.push(message);
  }

  let turns = mergeTurns([...newestFirst.reverse(), last]);
  if (turns.length > maxTurns) {
    turns = turns.slice(-maxTurns);
    truncated = true;
  }
  while (turns[0]?.role === 'assistant') turns.shift();

  const messageTokens = turns.reduce((sum, turn) => sum + estimateMessageTokens(turn.content), 0);
  return { messages: turns, estimatedInputTokens: systemTokens + messageTokens, truncated };
}

function mergeTurns(messages: ConversationMessage[]): ConversationMessage[] {
  const turns: ConversationMessage[] = [];
  for (const message of messages) {
    const previous = turns.at(-1);
    if (previous && previous.role === message.role)
      previous.content = `${previous.content}\n\n${message.content}`;
    else turns.push({ ...message });
  }
  return turns;
}

function withoutMention(text: string, botUsername: string | undefined): string {
  if (!botUsername) return text;
  const stripped = stripBotMention(text, botUsername);
  return stripped === '' ? text : stripped;
}

function userText(row: HistoryRow, text: string, named: boolean): string {
  return named ? `[${senderName(row)}]: ${text}` : text;
}

/** First and last name as Telegram has them, else @username, else the numeric id. */
export function senderName(row: Pick<HistoryRow, 'from' | 'fromUsername' | 'fromUserId'>): string {
  const from = row.from ?? {};
  const full = [from.first_name, from.last_name]
    .filter((part): part is string => typeof part === 'string')
    .join(' ');
  const username = typeof from.username === 'string' ? from.username : row.fromUsername;
  const name =
    clean(full) ||
    (username ? `@${clean(username)}` : '') ||
    (row.fromUserId !== null ? `user ${row.fromUserId}` : 'someone');
  return name;
}

/** Brackets and line breaks in a name could fake another speaker's prefix. */
function clean(name: string): string {
  return name
    .replace(/[[\]\r\n\t]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, MAX_NAME_LENGTH);
}

/**
 * Starts the conversation afresh (/reset, /new): later requests only see messages after `now`; in a
 * forum topic (`topicId`), that topic's. With `commandMessageId`, after that stored message's own
 * instant instead, to the microsecond `now` (a Date) cannot hold: the messages sent just before the
 * command, stored in the same ingress statement, are a microsecond before it. Creates the
 * chat row when the chat has none yet; `chatType` is only used then.
 */
export async function resetConversation(
  db: Queryable,
  input: {
    agentId: string;
    chatId: number;
    topicId?: number | undefined;
    now: Date;
    commandMessageId?: string | undefined;
    chatType?: TelegramChatType;
  },
): Promise<void> {
  const { agentId, chatId, topicId, now } = input;
  const type = input.chatType ?? (chatId < 0 ? 'group' : 'private');
  const at =
    input.commandMessageId === undefined
      ? sql`${now.toISOString()}::timestamptz`
      : sql`coalesce((select ${telegramMessages.createdAt} from ${telegramMessages}
          where ${telegramMessages.id} = ${input.commandMessageId}), ${now.toISOString()}::timestamptz)`;
  if (topicId === undefined) {
    await db
      .insert(telegramChats)
      .values({ agentId, chatId, type, historyResetAt: at })
      .onConflictDoUpdate({
        target: [telegramChats.agentId, telegramChats.chatId],
        set: { historyResetAt: at, updatedAt: now },
      });
    return;
  }
  await db
    .insert(telegramChats)
    .values({
      agentId,
      chatId,
      type,
      topicHistoryResetAt: sql`jsonb_build_object(${String(topicId)}::text, to_json(${at}) #>> '{}')`,
    })
    .onConflictDoUpdate({
      target: [telegramChats.agentId, telegramChats.chatId],
      set: {
        topicHistoryResetAt: sql`coalesce(${telegramChats.topicHistoryResetAt}, '{}'::jsonb) || excluded.topic_history_reset_at`,
        updatedAt: now,
      },
    });
}
