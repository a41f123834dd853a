import { createClaudeClient } from './client';
import { classifyClaudeError } from './errors';

export type ClaudeKeyValidation =
  | { status: 'valid'; modelAvailable: boolean; models: string[] }
  | { status: 'invalid'; reason: string }
  | { status: 'unreachable'; reason: string };

export interface ValidateClaudeOptions {
  baseURL?: string;
  /** Default 10 s per request. */
  timeoutMs?: number;
  /** Upper bound on model-list pages read (default 20). */
  maxPages?: number;
}

/**
 * Checks an Anthropic key by listing its models (all pages, bounded) and whether `model` is among
 * them. Costs no tokens. Reasons never contain the key.
 */
export async function validateClaudeKey(
  apiKey: string,
  model: string,
  options: ValidateClaudeOptions = {},
): Promise<ClaudeKeyValidation> {
  if (apiKey.trim() === '') return { status: 'invalid', reason: 'API key is empty' };
  const client = createClaudeClient(apiKey, {
    baseURL: options.baseURL,
    timeoutMs: options.timeoutMs ?? 10_000,
  });
  const maxPages = options.maxPages ?? 20;
  try {
    const models: string[] = [];
    let page = await client.models.list({ limit: 100 });
    for (let n = 1; ; n++) {
      models.push(...page.data.map((m) => m.id));
      if (!page.hasNextPage() || n >= maxPages) break;
      page = await page.getNextPage();
    }
    return { status: 'valid', modelAvailable: models.includes(model), models };
  } catch (error) {
    const kind = classifyClaudeError(error);
    switch (kind.kind) {
      case 'invalid_credential':
        return { status: 'invalid', reason: `Anthropic rejected the API key (${kind.status})` };
      case 'retryable':
        return { status: 'unreachable', reason: 'Anthropic could not be reached' };
      case 'retry_after':
        return {
          status: 'unreachable',
          reason: `Anthropic is busy (${kind.status}), retry after ${kind.seconds} s`,
        };
      default:
        return { status: 'unreachable', reason: `Anthropic answered unexpectedly: ${kind.message}` };
    }
  }
}
