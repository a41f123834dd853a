import type Anthropic from '@anthropic-ai/sdk';
import { estimateTextTokens } from '../conversation/tokens';

export interface ChatMessage {
  role: 'user' | 'assistant';
  content: string;
}

export interface GenerateReplyInput {
  client: Anthropic;
  model: string;
  system?: string | undefined;
  messages: ChatMessage[];
  maxTokens: number;
  temperature?: number | undefined;
}

export interface GeneratedReply {
  text: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
  stopReason: string | null;
}

/*
 * Prompt caching only applies to prefixes of at least 1024 tokens (the smallest minimum among current
 * models; some need 2048 or 4096, and below a model's minimum the marker is simply ignored). A system
 * prompt estimated at that many tokens is marked with an ephemeral cache_control; shorter ones are
 * sent as a plain block, since they cannot be cached anyway. Estimated, not counted in characters: a
 * Chinese or Japanese prompt is about a token a character, so 4096 characters would never be reached
 * under the 10 KB prompt cap although 1024 tokens are.
 */
export const CACHEABLE_SYSTEM_TOKENS = 1024;

/** One non-streaming Messages call; returns the text and the usage the quotas are charged with. */
export async function generateReply(input: GenerateReplyInput): Promise<GeneratedReply> {
  const system = input.system?.trim();
  const cacheable = system !== undefined && estimateTextTokens(system) >= CACHEABLE_SYSTEM_TOKENS;
  const response = await input.client.messages.create({
    model: input.model,
    max_tokens: input.maxTokens,
    messages: input.messages.map((m) => ({ role: m.role, content: m.content })),
    ...(system
      ? {
          system: [
            {
              type: 'text' as const,
              text: system,
              ...(cacheable ? { cache_control: { type: 'ephemeral' as const } } : {}),
            },
          ],
        }
      : {}),
    ...(input.temperature === undefined ? {} : { temperature: input.temperature }),
  });
  const text = response.content
    .flatMap((block) => (block.type === 'text' ? [block.text] : []))
    .join('')
    .trim();
  return {
    text,
    inputTokens: response.usage.input_tokens,
    outputTokens: response.usage.output_tokens,
    cacheReadTokens: response.usage.cache_read_input_tokens ?? 0,
    cacheCreationTokens: response.usage.cache_creation_input_tokens ?? 0,
    stopReason: response.stop_reason,
  };
}
