/**
 * Context windows (input + output tokens) of Claude models, by model id prefix; the longest matching
 * prefix wins, so dated ids (`claude-3-5-sonnet-20241022`) and aliases (`claude-sonnet-4-5`) both match.
 * The Claude 4 family answers with 1M tokens only behind a beta header this platform does not send.
 */
const CONTEXT_WINDOWS: ReadonlyArray<readonly [prefix: string, tokens: number]> = [
  ['claude-instant', 100_000],
  ['claude-2', 100_000],
  ['claude-2.1', 200_000],
  ['claude-3', 200_000],
  ['claude-opus-4', 200_000],
  ['claude-sonnet-4', 200_000],
  ['claude-haiku-4', 200_000],
];

/** For a model id this table does not know: what every current Claude model has. */
export const DEFAULT_CONTEXT_WINDOW = 200_000;

export function contextWindowFor(model: string): number {
  let best: { length: number; tokens: number } | undefined;
  for (const [prefix, tokens] of CONTEXT_WINDOWS) {
    if (model.startsWith(prefix) && (!best || prefix.length > best.length)) {
      best = { length: prefix.length, tokens };
    }
  }
  return best?.tokens ?? DEFAULT_CONTEXT_WINDOW;
}
