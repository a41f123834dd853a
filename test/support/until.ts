/**
 * Polls `check` every 25 ms until it holds, for at most `timeoutMs` (5 s unless given); then throws,
 * naming `what` it waited for, followed by `detail()` when given (a child process's output, say).
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  options: { timeoutMs?: number; detail?: () => string } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  for (let waited = 0; waited < timeoutMs; waited += 25) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const detail = options.detail?.();
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail ? `\n${detail}` : ''}`);
}
