import Anthropic from '@anthropic-ai/sdk';

export interface ClaudeClientOptions {
  /** API base URL (default https://api.anthropic.com); tests use the fake's loopback URL. */
  baseURL?: string;
  /** Per-request timeout in milliseconds (default 120 s). */
  timeoutMs?: number;
}

export const DEFAULT_ANTHROPIC_BASE_URL = 'https://api.anthropic.com';

const MIN_ANSWER_TIMEOUT_MS = 120_000;
/** The SDK's own default for a non-streaming request, and its ceiling before it demands streaming. */
const MAX_ANSWER_TIMEOUT_MS = 600_000;
/** Reading a long context before the first token (prompt processing of up to 200k tokens). */
const CONTEXT_READ_MS = 60_000;
/** The slowest output we plan for: large models under load write 20-40 tokens a second. */
const SLOW_TOKENS_PER_SECOND = 20;

/**
 * How long one answer of up to `maxTokens` may take before the request is abandoned: a minute to
 * read the context plus `maxTokens` at a slow 20 tokens/s, between 120 s and the SDK's 10 minutes.
 * A fixed 120 s cut a full 8,192-token answer of a slow model short, and every retry paid for it again.
 */
export function answerTimeoutMs(maxTokens: number): number {
  const expected = CONTEXT_READ_MS + (maxTokens / SLOW_TOKENS_PER_SECOND) * 1000;
  return Math.min(MAX_ANSWER_TIMEOUT_MS, Math.max(MIN_ANSWER_TIMEOUT_MS, Math.ceil(expected)));
}

/**
 * The official SDK client for one customer's key. `maxRetries: 0`: retries belong to our jobs engine,
 * which honours retry-after across processes and records every attempt.
 */
export function createClaudeClient(apiKey: string, options: ClaudeClientOptions = {}): Anthropic {
  return new Anthropic({
    apiKey,
    baseURL: options.baseURL ?? DEFAULT_ANTHROPIC_BASE_URL,
    timeout: options.timeoutMs ?? MIN_ANSWER_TIMEOUT_MS,
    maxRetries: 0,
  });
}
