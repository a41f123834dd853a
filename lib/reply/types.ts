import type { TelegramChatType } from '../policy/access';

/** Where an answer goes: the chat, and in groups the message it replies to. */
export interface ReplyTarget {
  chatId: number;
  /** Groups: the triggering message (the first chunk replies to it). */
  replyToMessageId?: number | undefined;
  /** Forum topics: the thread the triggering message was in. */
  messageThreadId?: number | undefined;
  /**
   * A comment thread of a channel's discussion group (a reply thread outside a forum): Telegram
   * keeps a message there only as a reply, so every chunk replies to the triggering message.
   */
  everyChunkReplies?: boolean | undefined;
  /** The thread the typing action is sent to: the topic, and in a forum's General topic its id. */
  typingThreadId?: number | undefined;
}

/** The stored inbound message one reply run answers (the `telegram/update.received` event's data). */
export interface InboundRef {
  agentId: string;
  customerId: string;
  /** telegram_messages.id */
  messageId: string;
  chatId: number;
}

/** Why a message gets no answer at all. */
export type SkipReason =
  | 'already_handled'
  | 'agent_not_running'
  | 'customer_suspended'
  | 'edited'
  | 'no_sender'
  | 'from_bot'
  /** A channel's post Telegram copied into its discussion group (sent as user 777000, not a bot). */
  | 'automatic_forward'
  | 'no_text'
  /** An uncaptioned item of an album another item of it speaks for. */
  | 'album_item'
  | 'dm_disabled'
  | 'not_allowed'
  | 'group_disabled'
  | 'not_addressed'
  | 'channel'
  /** A group's upgrade to a supergroup: recorded, nothing to answer. */
  | 'chat_migrated'
  | 'quota_exceeded'
  | 'token_budget_exceeded';

/** A customer-facing `agent.error` the run should send. */
export interface AgentErrorNotice {
  code: string;
  message: string;
}

/**
 * What one inbound message gets, decided once (the decision counts the message against the quota, so
 * the reply function stores it as a step result and never decides twice).
 */
export type InboundDecision =
  | { action: 'skip'; reason: SkipReason }
  /** An earlier message of this chat is still being answered: decide again a little later. */
  | { action: 'wait' }
  | {
      /** A fixed text, no Claude call: a command's answer, a pairing code, a quota notice. */
      action: 'notice';
      kind: 'command' | 'pairing' | 'quota' | 'token_budget' | 'unsupported';
      target: ReplyTarget;
      text: string;
      /** The inbound message's final status: commands are answered, the rest stay out of the history. */
      settle: 'answered' | 'ignored';
      agentError?: AgentErrorNotice | undefined;
    }
  | {
      action: 'answer';
      target: ReplyTarget;
      /** The text Claude reads (the bot's @mention removed in groups). */
      text: string;
      chatType: TelegramChatType;
    };
