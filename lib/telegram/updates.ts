import { z } from 'zod';
import { type BotCommandName, isBotCommandName } from '../conversation/commands';

/*
 * The subset of Telegram's Update we act on. Objects are loose: Telegram adds fields often and an
 * unknown field must never make us drop a user's message.
 */

export const TelegramUserSchema = z.looseObject({
  id: z.number().int(),
  is_bot: z.boolean(),
  first_name: z.string(),
  last_name: z.string().optional(),
  username: z.string().optional(),
  language_code: z.string().optional(),
});
export type TelegramUser = z.infer<typeof TelegramUserSchema>;

export const TelegramChatSchema = z.looseObject({
  id: z.number().int(),
  type: z.enum(['private', 'group', 'supergroup', 'channel']),
  title: z.string().optional(),
  username: z.string().optional(),
  first_name: z.string().optional(),
  /** A supergroup with topics. */
  is_forum: z.boolean().optional(),
});
export type TelegramChat = z.infer<typeof TelegramChatSchema>;

export const MessageEntitySchema = z.looseObject({
  type: z.string(),
  offset: z.number().int().nonnegative(),
  length: z.number().int().nonnegative(),
  user: TelegramUserSchema.optional(),
});
export type MessageEntity = z.infer<typeof MessageEntitySchema>;

const BaseMessageSchema = z.looseObject({
  message_id: z.number().int(),
  message_thread_id: z.number().int().optional(),
  /** True when the message belongs to a forum topic: only then is a reply sent into the thread. */
  is_topic_message: z.boolean().optional(),
  from: TelegramUserSchema.optional(),
  /** The chat a message speaks for: the group (an anonymous admin) or a channel; `from` is then a stand-in bot. */
  sender_chat: TelegramChatSchema.optional(),
  /** A linked channel's post, copied into its discussion group by Telegram. */
  is_automatic_forward: z.boolean().optional(),
  chat: TelegramChatSchema,
  date: z.number().int(),
  text: z.string().optional(),
  caption: z.string().optional(),
  /** The album a photo or video belongs to: Telegram sends one message per item, sharing this id. */
  media_group_id: z.string().optional(),
  entities: z.array(MessageEntitySchema).optional(),
  /** A caption's entities: Telegram keeps them apart from a text's. */
  caption_entities: z.array(MessageEntitySchema).optional(),
  edit_date: z.number().int().optional(),
  /** Service messages of a group upgraded to a supergroup: in the old chat, and in the new one. */
  migrate_to_chat_id: z.number().int().optional(),
  migrate_from_chat_id: z.number().int().optional(),
});

export const TelegramMessageSchema = BaseMessageSchema.extend({
  reply_to_message: BaseMessageSchema.optional(),
});
export type TelegramMessage = z.infer<typeof TelegramMessageSchema>;

export const TelegramUpdateSchema = z.looseObject({
  update_id: z.number().int().nonnegative(),
  message: TelegramMessageSchema.optional(),
  edited_message: TelegramMessageSchema.optional(),
});
export type TelegramUpdate = z.infer<typeof TelegramUpdateSchema>;

/** The message an update carries (new or edited), with `edited` telling which. */
export function updateMessage(
  update: TelegramUpdate,
): { message: TelegramMessage; edited: boolean } | undefined {
  if (update.message) return { message: update.message, edited: false };
  if (update.edited_message) return { message: update.edited_message, edited: true };
  return undefined;
}

export interface BotRef {
  id: number;
  username: string;
}

/**
 * The General topic's thread id. Telegram leaves it out of General's messages and refuses it in
 * sendMessage ("message thread not found"), yet shows a typing action there only with it.
 * https://github.com/openclaw/openclaw/pull/848 tabulates both calls.
 */
export const GENERAL_TOPIC_THREAD_ID = 1;

/** Where "typing…" shows for an answer to `message`: its topic, a forum's General topic, else nowhere. */
export function typingThreadOf(
  message: Pick<TelegramMessage, 'chat' | 'is_topic_message' | 'message_thread_id'>,
): number | undefined {
  return forumTopicOf(message) ?? (message.chat.is_forum ? GENERAL_TOPIC_THREAD_ID : undefined);
}

/**
 * The forum topic a message belongs to (a topic of a forum supergroup, or of a private chat with
 * topics); undefined for the General topic and outside forums. Each topic is a conversation of its own.
 */
export function forumTopicOf(
  message: Pick<TelegramMessage, 'is_topic_message' | 'message_thread_id'>,
): number | undefined {
  return message.is_topic_message ? message.message_thread_id : undefined;
}

/** What a message says, with the entities that go with it: its text, or else a media item's caption. */
export function messageText(message: TelegramMessage): { text: string; entities: MessageEntity[] } {
  if (message.text !== undefined) return { text: message.text, entities: message.entities ?? [] };
  return { text: message.caption ?? '', entities: message.caption_entities ?? [] };
}

/** Media a message can carry (each a field of Telegram's Message), as a note to the model names it. */
const ATTACHMENT_KINDS = {
  photo: 'a photo',
  video: 'a video',
  animation: 'an animation',
  video_note: 'a video message',
  voice: 'a voice message',
  audio: 'an audio file',
  document: 'a file',
  sticker: 'a sticker',
  // Content without a caption: never part of what Claude reads, but something the user sent.
  contact: 'a contact',
  location: 'a location',
  venue: 'a venue',
  poll: 'a poll',
  dice: 'a dice',
  story: 'a story',
  game: 'a game',
  paid_media: 'paid media',
} as const;

/**
 * What the message carries besides text, as words ("a photo"); undefined for text alone and for
 * service messages (a pin, a member joining, a timer changed), which nobody sent to the bot.
 */
export function attachmentOf(message: TelegramMessage): string | undefined {
  for (const [field, words] of Object.entries(ATTACHMENT_KINDS)) {
    if (message[field] !== undefined) return words;
  }
  return undefined;
}

/** The message fields that carry an attachment (`photo`, `voice`...), in the order `attachmentOf` checks them. */
export const ATTACHMENT_FIELDS = Object.keys(ATTACHMENT_KINDS) as AttachmentField[];
export type AttachmentField = keyof typeof ATTACHMENT_KINDS;

/** `attachmentOf`'s words for a field read from a stored update; undefined for none (or one unknown). */
export function attachmentWords(field: string | null): string | undefined {
  return field !== null && Object.hasOwn(ATTACHMENT_KINDS, field)
    ? ATTACHMENT_KINDS[field as AttachmentField]
    : undefined;
}

/**
 * A caption as the model should read it: Claude is given text only, so it is told that media came
 * with it (and answers "I cannot see the photo" rather than as if the caption stood alone).
 */
export function withAttachmentNote(text: string, attachment: string | undefined): string {
  return attachment ? `[The user sent ${attachment} with this caption; you cannot see it.]\n${text}` : text;
}

/** The UTF-16 slice an entity covers (Telegram offsets are in UTF-16 code units, as JS strings are). */
const entityText = (text: string, e: MessageEntity) => text.slice(e.offset, e.offset + e.length);

/**
 * Whether a group message is meant for the bot: an @mention of its username (case-insensitive), a
 * text_mention of its id, a /command@username, one of the bot's own commands (/start, /help, /reset,
 * /new) naming no bot, or a reply to one of the bot's messages. Private chats are always addressed to
 * the bot.
 *
 * A bare command counts because that is what a user sends from the command menu in a group with one
 * bot, and what the help text lists; grammY's `bot.command` matches it the same way. With privacy mode
 * on (Telegram's default) a bot receives a bare command only when it was the last bot to speak in the
 * group; a bot with privacy mode off shares bare commands with the group's other bots.
 */
export function isAddressedToBot(message: TelegramMessage, bot: BotRef): boolean {
  if (message.chat.type === 'private') return true;
  const reply = message.reply_to_message;
  // In a forum topic Telegram makes every message not replying to another a reply to the topic's
  // creation (whose id is the thread's): from the bot when the topic was created with its token.
  const topicOpening = message.is_topic_message === true && reply?.message_id === message.message_thread_id;
  if (reply?.from?.id === bot.id && !topicOpening) return true;
  const { text, entities } = messageText(message);
  const username = bot.username.replace(/^@/, '').toLowerCase();
  for (const entity of entities) {
    if (entity.type === 'text_mention' && entity.user?.id === bot.id) return true;
    if (entity.type === 'mention' && entityText(text, entity).toLowerCase() === `@${username}`) return true;
    if (entity.type === 'bot_command') {
      const at = entityText(text, entity).split('@')[1];
      if (at !== undefined && at.toLowerCase() === username) return true;
      if (at === undefined && entity.offset === 0 && matchCommand(text) !== undefined) return true;
    }
  }
  return false;
}

export interface ParsedCommand {
  command: BotCommandName;
  args: string;
}

/**
 * Parses `/start`, `/help`, `/reset` or `/new` (optionally `@botusername`, which must then be this
 * bot's) at the start of the text. Anything else, including commands for another bot, is undefined.
 */
export function parseCommand(text: string | undefined, botUsername?: string): ParsedCommand | undefined {
  const found = matchCommand(text);
  if (!found) return undefined;
  const { target } = found;
  if (
    target !== undefined &&
    (!botUsername || target.toLowerCase() !== botUsername.replace(/^@/, '').toLowerCase())
  ) {
    return undefined;
  }
  return { command: found.command, args: found.args };
}

/**
 * Whether the text is one of our commands, for any bot it names: what ingress stores as `is_command`
 * (it does not know the bot's username), so that `/help@bot` and its answer stay out of the history.
 */
export function isBotCommandText(text: string | undefined): boolean {
  return matchCommand(text) !== undefined;
}

function matchCommand(text: string | undefined): (ParsedCommand & { target?: string }) | undefined {
  if (!text) return undefined;
  const m = /^\/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?(?:\s+([\s\S]*))?$/.exec(text.trim());
  if (!m) return undefined;
  const name = m[1]!.toLowerCase();
  if (!isBotCommandName(name)) return undefined;
  return {
    command: name,
    args: (m[3] ?? '').trim(),
    ...(m[2] === undefined ? {} : { target: m[2] }),
  };
}

/**
 * The text with the bot's own @mention removed, as the model should read it. The mention and the spaces
 * beside it leave one space between words, none at a line's edge; newlines and indentation stay as
 * typed (code pasted in a group keeps its shape). A leading `/command@bot` keeps its command;
 * `ann@bot.com` and `@bot2` are not the bot.
 */
export function stripBotMention(text: string, botUsername: string): string {
  const name = botUsername.replace(/^@/, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const mention = new RegExp(`([ \\t]*)(?<![\\w.@])@${name}(?!\\w)([ \\t]*)`, 'gi');
  return text
    .replace(new RegExp(`^(/\\w+)@${name}(?!\\w)`, 'i'), '$1')
    .replace(mention, (_match, before: string, after: string) => (before && after ? ' ' : ''))
    .trim();
}

/** The move a group's upgrade to a supergroup made, read from either chat's service message. */
export function chatMigrationOf(
  message: TelegramMessage,
): { fromChatId: number; toChatId: number } | undefined {
  if (message.migrate_to_chat_id !== undefined) {
    return { fromChatId: message.chat.id, toChatId: message.migrate_to_chat_id };
  }
  if (message.migrate_from_chat_id !== undefined) {
    return { fromChatId: message.migrate_from_chat_id, toChatId: message.chat.id };
  }
  return undefined;
}
