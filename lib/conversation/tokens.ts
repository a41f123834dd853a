/**
 * A deliberately pessimistic token estimate, used to decide how much history fits a request.
 *
 * Anthropic publishes no tokenizer for Claude 3 and later: `@anthropic-ai/tokenizer` (last release
 * 0.0.4, February 2024) is the Claude 2 vocabulary and its own README says it is inaccurate for newer
 * models; the exact count needs a `count_tokens` API call per message, which costs a round trip on every
 * reply. So: English-like text averages about 3.5 characters per token, while other scripts (Cyrillic,
 * CJK, emoji) take one or more tokens per character. An estimate that is too high only drops the
 * oldest turns a little early; one that is too low makes Claude refuse the request.
 *
 * - ASCII characters: 1 token per 3.5, rounded up;
 * - any other character of the Basic Multilingual Plane: 1 token each;
 * - characters beyond it (most emoji): 2 tokens each;
 * - plus `MESSAGE_OVERHEAD_TOKENS` per message for the role and turn markers.
 */
export const CHARS_PER_TOKEN = 3.5;
export const MESSAGE_OVERHEAD_TOKENS = 4;

export function estimateTextTokens(text: string): number {
  let ascii = 0;
  let other = 0;
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    if (code < 0x80) ascii++;
    else other += code > 0xffff ? 2 : 1;
  }
  return Math.ceil(ascii / CHARS_PER_TOKEN) + other;
}

/** One message of a request: its text and the overhead around it. */
export function estimateMessageTokens(text: string): number {
  return estimateTextTokens(text) + MESSAGE_OVERHEAD_TOKENS;
}
