import type Anthropic from '@anthropic-ai/sdk';

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
  /** Override of the cacheable-system threshold in characters (see CACHEABLE_SYSTEM_CHARS). */
  cacheMinChars?: number;
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
 * models; some need 2048 or 4096, and below a model's minimum the marker is simply ignored). At ~4
 * characters a token, a system prompt of 4096+ characters is worth marking with an ephemeral
 * cache_control; shorter ones are sent as a plain block, since they cannot be cached anyway.
 */
export const CACHEABLE_SYSTEM_CHARS = 4096;

/** One non-streaming Messages call; returns the text and the usage the quotas are charged with. */
export async function generateReply(input: GenerateReplyInput): Promise<GeneratedReply> {
  const system = input.system?.trim();
  const cacheable = system !== undefined && system.length >= (input.cacheMinChars ?? CACHEABLE_SYSTEM_CHARS);
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
