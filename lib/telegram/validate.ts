import { createTelegramApi } from './api';
import { classifyTelegramError } from './errors';

export type TelegramTokenValidation =
  | { status: 'valid'; botId: number; username: string; usernameMatches: boolean }
  | { status: 'invalid'; reason: string }
  | { status: 'unreachable'; reason: string };

export interface ValidateTelegramOptions {
  apiRoot?: string;
  /** Default 10 s. */
  timeoutMs?: number;
}

/**
 * Checks a bot token with getMe. `usernameMatches` compares with `expectedUsername`
 * (case-insensitive, '@' ignored; true when none is expected). Reasons never contain the token.
 */
export async function validateTelegramToken(
  token: string,
  expectedUsername?: string,
  options: ValidateTelegramOptions = {},
): Promise<TelegramTokenValidation> {
  if (!/^\d{1,20}:[A-Za-z0-9_-]{20,}$/.test(token)) {
    return { status: 'invalid', reason: 'token is not in the form <bot id>:<secret>' };
  }
  const api = createTelegramApi(token, { apiRoot: options.apiRoot, timeoutMs: options.timeoutMs ?? 10_000 });
  try {
    const me = await api.getMe();
    if (!me.is_bot || !me.username) return { status: 'invalid', reason: 'token does not belong to a bot' };
    const expected = expectedUsername?.replace(/^@/, '').toLowerCase();
    return {
      status: 'valid',
      botId: me.id,
      username: me.username,
      usernameMatches: expected === undefined || expected === me.username.toLowerCase(),
    };
  } catch (error) {
    const kind = classifyTelegramError(error);
    switch (kind.kind) {
      case 'invalid_token':
        return { status: 'invalid', reason: 'Telegram rejected the bot token (401 Unauthorized)' };
      case 'retryable':
        return { status: 'unreachable', reason: 'Telegram could not be reached' };
      case 'retry_after':
        return { status: 'unreachable', reason: `Telegram is rate limiting, retry after ${kind.seconds} s` };
      default:
        return { status: 'invalid', reason: `Telegram refused getMe: ${kind.description}` };
    }
  }
}
