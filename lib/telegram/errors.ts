import { GrammyError, HttpError } from 'grammy';

/** What the caller should do about a failed Bot API call. */
export type TelegramErrorKind =
  | { kind: 'retry_after'; seconds: number }
  | { kind: 'blocked'; description: string }
  | { kind: 'bad_entities'; description: string }
  | { kind: 'invalid_token' }
  | { kind: 'retryable'; description: string }
  | { kind: 'fatal'; description: string };

/** The default wait when Telegram answers 429 without `retry_after` (it always sends one, in practice). */
const DEFAULT_RETRY_AFTER_SECONDS = 5;

const BLOCKED =
  /bot was blocked by the user|user is deactivated|bot was kicked|bot is not a member|chat not found|have no rights to send|group chat was (upgraded|deleted)|bot can't initiate conversation/i;

/**
 * Sorts a grammY error (`GrammyError` = the Bot API said no, `HttpError` = the request never got an
 * answer) into the decision the delivery code takes. Anything that is not a grammY error is `fatal`.
 * The token never appears in a description: grammY's messages carry the method name only.
 */
export function classifyTelegramError(error: unknown): TelegramErrorKind {
  if (error instanceof GrammyError) {
    const code = error.error_code;
    const description = error.description;
    if (code === 429) {
      const seconds = error.parameters.retry_after;
      return { kind: 'retry_after', seconds: seconds && seconds > 0 ? seconds : DEFAULT_RETRY_AFTER_SECONDS };
    }
    if (code === 401 || (code === 404 && error.method === 'getMe')) return { kind: 'invalid_token' };
    if (code === 403) return { kind: 'blocked', description };
    if (code === 400 && /can't parse entities|unsupported start tag|can't find end tag/i.test(description)) {
      return { kind: 'bad_entities', description };
    }
    if (code === 400 && BLOCKED.test(description)) return { kind: 'blocked', description };
    if (code >= 500) return { kind: 'retryable', description };
    return { kind: 'fatal', description };
  }
  if (error instanceof HttpError) {
    return { kind: 'retryable', description: error.message };
  }
  return { kind: 'fatal', description: error instanceof Error ? error.message : String(error) };
}

/**
 * The supergroup a basic group became, when that is why Telegram refused a call to the group's old id
 * (400 "group chat was upgraded to a supergroup chat" with `migrate_to_chat_id`).
 */
export function migratedChatIdOf(error: unknown): number | undefined {
  if (!(error instanceof GrammyError) || error.error_code !== 400) return undefined;
  const to = error.parameters.migrate_to_chat_id;
  return typeof to === 'number' && Number.isSafeInteger(to) ? to : undefined;
}

/** Telegram does not know the forum topic a call named (400 "message thread not found"). */
export function isThreadNotFound(error: unknown): boolean {
  return (
    error instanceof GrammyError &&
    error.error_code === 400 &&
    /message thread not found/i.test(error.description)
  );
}

/** A message Telegram did not take, as the sender acts on it. */
export type SendFailure =
  | { status: 'retry_after'; seconds: number }
  /** The user blocked the bot, left, or the chat is gone: nothing more can be sent there. */
  | { status: 'blocked'; description: string }
  | { status: 'retryable'; description: string }
  | { status: 'failed'; description: string };

/** `classifyTelegramError` for a sendMessage that failed. */
export function sendFailureOf(error: unknown): SendFailure {
  const kind = classifyTelegramError(error);
  switch (kind.kind) {
    case 'retry_after':
      return { status: 'retry_after', seconds: kind.seconds };
    case 'blocked':
      return { status: 'blocked', description: kind.description };
    case 'retryable':
      return { status: 'retryable', description: kind.description };
    case 'invalid_token':
      return { status: 'failed', description: 'Telegram rejected the bot token' };
    case 'bad_entities':
    case 'fatal':
      return { status: 'failed', description: kind.description };
  }
}
