import { Api } from 'grammy';

export interface TelegramApiOptions {
  /** Bot API root, e.g. https://api.telegram.org (default) or a fake's loopback URL in tests. */
  apiRoot?: string;
  /** Per-request timeout in milliseconds (default 30 s; long polls add their own `timeout`). */
  timeoutMs?: number;
}

export const DEFAULT_TELEGRAM_API_ROOT = 'https://api.telegram.org';

/** grammY's `Api` for one bot token, pointed at `apiRoot` with a bounded request time. */
export function createTelegramApi(token: string, options: TelegramApiOptions = {}): Api {
  return new Api(token, {
    apiRoot: options.apiRoot ?? DEFAULT_TELEGRAM_API_ROOT,
    // grammY takes whole seconds; never round a short timeout down to zero.
    timeoutSeconds: Math.max(1, Math.ceil((options.timeoutMs ?? 30_000) / 1000)),
  });
}
