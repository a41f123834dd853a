import { APIConnectionError, APIError } from '@anthropic-ai/sdk';

/** What the caller should do about a failed Claude call. */
export type ClaudeErrorKind =
  | { kind: 'retry_after'; seconds: number; status: number }
  | { kind: 'retryable'; message: string }
  | { kind: 'invalid_credential'; status: number }
  | { kind: 'model_unavailable'; message: string }
  | { kind: 'bad_request'; message: string }
  | { kind: 'fatal'; message: string };

/** Waits when a 429/529 arrives without a usable retry-after header. */
export const DEFAULT_RATE_LIMIT_SECONDS = 30;
export const DEFAULT_OVERLOADED_SECONDS = 15;

/** retry-after as seconds: an integer/decimal number of seconds or an HTTP date. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.max(0, Math.ceil(Number(trimmed)));
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

function apiMessage(error: APIError): string {
  const body = error.error as { error?: { type?: string; message?: string } } | undefined;
  const type = body?.error?.type;
  const message = body?.error?.message;
  return [type, message].filter(Boolean).join(': ') || `HTTP ${error.status}`;
}

/**
 * Sorts an @anthropic-ai/sdk error into the decision the reply engine takes. Messages come from
 * Anthropic's error body, which never echoes the API key.
 */
export function classifyClaudeError(error: unknown): ClaudeErrorKind {
  // APIConnectionError (and its timeout subclass) extends APIError with status undefined.
  if (error instanceof APIConnectionError) return { kind: 'retryable', message: error.message };
  if (error instanceof APIError) {
    const status = error.status;
    const message = apiMessage(error);
    if (status === 429 || status === 529) {
      const seconds =
        parseRetryAfter(error.headers?.get('retry-after')) ??
        (status === 429 ? DEFAULT_RATE_LIMIT_SECONDS : DEFAULT_OVERLOADED_SECONDS);
      return { kind: 'retry_after', seconds, status };
    }
    if (status === 401 || status === 403) return { kind: 'invalid_credential', status };
    if (status === 404) return { kind: 'model_unavailable', message };
    if (status === 408 || status === 409 || (status !== undefined && status >= 500)) {
      return { kind: 'retryable', message };
    }
    if (status === 400 || status === 413 || status === 422) return { kind: 'bad_request', message };
    return { kind: 'fatal', message };
  }
  return { kind: 'fatal', message: error instanceof Error ? error.message : String(error) };
}
