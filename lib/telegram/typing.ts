import type { Api } from 'grammy';
import { isThreadNotFound, migratedChatIdOf } from './errors';

export interface TypingOptions {
  /** How often the action is re-sent; Telegram shows it for about 5 s (default 4000 ms). */
  intervalMs?: number;
  /** Never keep typing longer than this (default 120 s), whatever the promise does. */
  maxMs?: number;
  /** Forum topic to show the action in. */
  messageThreadId?: number;
}

/**
 * Shows "typing…" in `chatId` until `work` settles: sent at once, then every `intervalMs`. A failed
 * sendChatAction stops the keep-alive (it is cosmetic and must not cause more calls) but never fails
 * `work`; only a group upgraded to a supergroup is followed, once, to the chat id Telegram names, and a
 * thread Telegram does not know (a General topic where the id is refused) is dropped, once. The timer
 * is always cleared. Returns what `work` returns.
 */
export async function withTyping<T>(
  api: Pick<Api, 'sendChatAction'>,
  chatId: number | string,
  work: Promise<T>,
  options: TypingOptions = {},
): Promise<T> {
  const intervalMs = options.intervalMs ?? 4_000;
  const deadline = Date.now() + (options.maxMs ?? 120_000);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let target = chatId;
  let threadId = options.messageThreadId;
  const send = () => {
    if (stopped) return;
    const extra = threadId === undefined ? undefined : { message_thread_id: threadId };
    api.sendChatAction(target, 'typing', extra).then(
      () => {
        if (stopped || Date.now() + intervalMs > deadline) return;
        timer = setTimeout(send, intervalMs);
      },
      (error: unknown) => {
        const movedTo = migratedChatIdOf(error);
        if (movedTo !== undefined && target === chatId) {
          target = movedTo;
          send();
          return;
        }
        if (threadId !== undefined && isThreadNotFound(error)) {
          threadId = undefined;
          send();
          return;
        }
        stopped = true;
      },
    );
  };
  send();
  try {
    return await work;
  } finally {
    stopped = true;
    if (timer) clearTimeout(timer);
  }
}
