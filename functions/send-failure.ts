import { NonRetriableError, RetryAfterError } from 'inngest';
import type { SendFailure } from '../lib/telegram/errors';

/** Telegram's 429: the engine waits the `retry_after` Telegram asked for, not its own backoff. */
export function telegramSlowDown(seconds: number): RetryAfterError {
  return new RetryAfterError('Telegram asked to slow down (429)', seconds * 1000);
}

/**
 * A Telegram send that must be tried again or given up, as the engine takes it: `retry_after` waits
 * Telegram's time, `retryable` backs off, `failed` ends the run (its code reaches agent.error).
 */
export function sendFailureError(failure: Exclude<SendFailure, { status: 'blocked' }>): Error {
  switch (failure.status) {
    case 'retry_after':
      return telegramSlowDown(failure.seconds);
    case 'retryable':
      return new Error(`Telegram could not take the message: ${failure.description}`);
    case 'failed':
      return new NonRetriableError(`telegram_send_failed: ${failure.description}`);
  }
}
