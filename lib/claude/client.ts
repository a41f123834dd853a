import Anthropic from '@anthropic-ai/sdk';

export interface ClaudeClientOptions {
  /** API base URL (default https://api.anthropic.com); tests use the fake's loopback URL. */
  baseURL?: string;
  /** Per-request timeout in milliseconds (default 120 s). */
  timeoutMs?: number;
}

export const DEFAULT_ANTHROPIC_BASE_URL = 'https://api.anthropic.com';

/**
 * The official SDK client for one customer's key. `maxRetries: 0`: retries belong to our jobs engine,
 * which honours retry-after across processes and records every attempt.
 */
export function createClaudeClient(apiKey: string, options: ClaudeClientOptions = {}): Anthropic {
  return new Anthropic({
    apiKey,
    baseURL: options.baseURL ?? DEFAULT_ANTHROPIC_BASE_URL,
    timeout: options.timeoutMs ?? 120_000,
    maxRetries: 0,
  });
}
