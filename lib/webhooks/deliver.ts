import type { Readable } from 'node:stream';
import { type Dispatcher, request } from 'undici';
import { storableText } from '../json-faults';
import { VERSION } from '../version';
import { createWebhookDispatcher, findBlockedTargetError } from './ssrf';

/**
 * One delivery attempt of a signed webhook body, classified for the retry loop:
 *
 * - `success`: a 2xx answer.
 * - `retry`: a network error, a timeout, 408, 429 or 5xx (with `retryAfterMs` when the receiver
 *   sent `Retry-After`).
 * - `give_up`: any other status (3xx: redirects are never followed; 4xx, where 410 Gone also
 *   means "stop sending"), a target the SSRF guard refuses, or an invalid URL.
 */

export const WEBHOOK_USER_AGENT = `OpenClaw-Webhooks/${VERSION} (+https://www.standardwebhooks.com)`;
export const DEFAULT_TIMEOUT_MS = 15_000;
export const RESPONSE_EXCERPT_BYTES = 1024;

export type DeliveryOutcome = 'success' | 'retry' | 'give_up';

export interface DeliveryResult {
  outcome: DeliveryOutcome;
  statusCode?: number;
  durationMs: number;
  /** The first `RESPONSE_EXCERPT_BYTES` of the response body, as text. */
  responseExcerpt?: string;
  /** Why it failed (no secrets: never the body or the signature). */
  error?: string;
  retryAfterMs?: number;
  /** True on 410 Gone: the receiver asks us to stop sending. */
  gone?: boolean;
}

export interface DeliverOnceInput {
  url: string;
  /** The exact body that was signed. */
  body: string;
  /** The signature headers (`signPayload`); Content-Type and User-Agent are added here. */
  headers: Record<string, string>;
  timeoutMs?: number;
  /** Allow http:// and private targets (development and tests). */
  allowPrivate: boolean;
  /** Defaults to a shared guarded dispatcher for `allowPrivate`. */
  dispatcher?: Dispatcher;
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** The connection's own bound (DNS, TCP and the TLS handshake), within the attempt's timeout. */
const CONNECT_TIMEOUT_MS = 10_000;

const sharedDispatchers = new Map<string, Dispatcher>();

/**
 * A guarded dispatcher shared by attempts with the same policy and connect bound. The request's
 * abort signal does not end a TLS handshake in progress, so the bound is the attempt's timeout
 * when that is shorter.
 */
function defaultDispatcher(allowPrivate: boolean, timeoutMs: number): Dispatcher {
  const connectTimeoutMs = Math.min(CONNECT_TIMEOUT_MS, timeoutMs);
  const key = `${allowPrivate}:${connectTimeoutMs}`;
  let dispatcher = sharedDispatchers.get(key);
  if (!dispatcher) {
    dispatcher = createWebhookDispatcher({ allowPrivate, connectTimeoutMs });
    sharedDispatchers.set(key, dispatcher);
  }
  return dispatcher;
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP-date. */
export function parseRetryAfter(value: string | undefined, now: Date = new Date()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now.getTime());
}

/** Reads at most `limit` bytes of a body and discards the rest without buffering it. */
async function readExcerpt(body: Readable, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      chunks.push(buffer.subarray(0, limit - size));
      size += Math.min(buffer.length, limit - size);
      if (size >= limit) break; // leaving the loop destroys the stream: the rest is never read
    }
  } catch {
    // A body cut short (timeout, reset) still leaves a usable excerpt.
  } finally {
    body.destroy();
  }
  // Stored in a text column: a binary reply's NUL would make the delivery's bookkeeping fail after a 2xx.
  return storableText(new TextDecoder().decode(Buffer.concat(chunks)));
}

function classifyStatus(status: number): DeliveryOutcome {
  if (status >= 200 && status < 300) return 'success';
  if (status === 408 || status === 429 || status >= 500) return 'retry';
  return 'give_up';
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return 'request failed';
  const code = (error as NodeJS.ErrnoException).code;
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return storableText(`${code ? `${code} ` : ''}${error.message}${cause}`.slice(0, 500));
}

export async function deliverOnce(input: DeliverOnceInput): Promise<DeliveryResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const timeoutMs = input.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  let url: URL;
  try {
    url = new URL(input.url);
  } catch {
    return { outcome: 'give_up', durationMs: elapsed(), error: 'invalid webhook URL' };
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && input.allowPrivate)) {
    return {
      outcome: 'give_up',
      durationMs: elapsed(),
      error: `webhook URL must use https (got ${url.protocol})`,
    };
  }
  if (url.username || url.password) {
    return { outcome: 'give_up', durationMs: elapsed(), error: 'webhook URL must not contain credentials' };
  }

  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const response = await request(url, {
      method: 'POST',
      body: input.body,
      headers: {
        ...input.headers,
        'content-type': 'application/json',
        'user-agent': WEBHOOK_USER_AGENT,
      },
      dispatcher: input.dispatcher ?? defaultDispatcher(input.allowPrivate, timeoutMs),
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const statusCode = response.statusCode;
    const responseExcerpt = await readExcerpt(response.body, RESPONSE_EXCERPT_BYTES);
    const outcome = classifyStatus(statusCode);
    const result: DeliveryResult = { outcome, statusCode, durationMs: elapsed(), responseExcerpt };
    if (outcome === 'retry') {
      const retryAfterMs = parseRetryAfter(headerValue(response.headers['retry-after']));
      if (retryAfterMs !== undefined) result.retryAfterMs = retryAfterMs;
      result.error = `receiver answered ${statusCode}`;
    } else if (outcome === 'give_up') {
      if (statusCode === 410) result.gone = true;
      result.error =
        statusCode >= 300 && statusCode < 400
          ? `receiver answered ${statusCode} redirect (redirects are not followed; update the webhook URL)`
          : `receiver answered ${statusCode}`;
    }
    return result;
  } catch (error) {
    const blocked = findBlockedTargetError(error);
    if (blocked) return { outcome: 'give_up', durationMs: elapsed(), error: blocked.message };
    const code = (error as NodeJS.ErrnoException).code;
    if (signal.aborted || (code && TIMEOUT_CODES.has(code)))
      return { outcome: 'retry', durationMs: elapsed(), error: `timed out after ${timeoutMs} ms` };
    return { outcome: 'retry', durationMs: elapsed(), error: describeError(error) };
  }
}
