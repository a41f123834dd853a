import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type Loopback, listenOnLoopback } from './loopback';

/**
 * A fake Telegram Bot API on 127.0.0.1 that the REAL grammY `Api` talks to (apiRoot = `fake.apiRoot`).
 * It speaks `/bot<token>/<method>` with JSON, urlencoded or query-string parameters and answers in the
 * Bot API's envelope (`{ ok: true, result }` / `{ ok: false, error_code, description, parameters }`).
 */

export interface BotIdentity {
  id: number;
  first_name: string;
  username: string;
  is_bot?: true;
}

export interface RecordedCall {
  method: string;
  token: string;
  params: Record<string, unknown>;
  at: Date;
}

export interface TelegramErrorSpec {
  error_code: number;
  description: string;
  parameters?: { retry_after?: number; migrate_to_chat_id?: number };
}

export interface SentMessage {
  token: string;
  chatId: number | string;
  messageId: number;
  text: string;
  parseMode: string | undefined;
  params: Record<string, unknown>;
}

interface WebhookState {
  url: string;
  secretToken: string | undefined;
  allowedUpdates: string[] | undefined;
  lastErrorDate: number | undefined;
  lastErrorMessage: string | undefined;
}

interface BotState {
  identity: BotIdentity;
  webhook: WebhookState | undefined;
  /** Updates waiting for getUpdates (polling) or that a webhook delivery failed to hand over. */
  queue: Record<string, unknown>[];
  waiters: Set<() => void>;
  nextMessageId: number;
}

interface Hold {
  /** Calls that still pass before the hold starts. */
  passing: number;
  waiting: Set<() => void>;
}

interface Failure {
  method: string;
  token: string | undefined;
  remaining: number;
  /** Matching calls that still succeed before the failures start. */
  skip: number;
  error: TelegramErrorSpec;
}

export const TELEGRAM_ERRORS = {
  tooManyRequests: (retryAfter: number): TelegramErrorSpec => ({
    error_code: 429,
    description: `Too Many Requests: retry after ${retryAfter}`,
    parameters: { retry_after: retryAfter },
  }),
  blocked: (): TelegramErrorSpec => ({
    error_code: 403,
    description: 'Forbidden: bot was blocked by the user',
  }),
  deactivated: (): TelegramErrorSpec => ({ error_code: 403, description: 'Forbidden: user is deactivated' }),
  kicked: (): TelegramErrorSpec => ({
    error_code: 403,
    description: 'Forbidden: bot was kicked from the group chat',
  }),
  internal: (): TelegramErrorSpec => ({ error_code: 500, description: 'Internal Server Error' }),
  badGateway: (): TelegramErrorSpec => ({ error_code: 502, description: 'Bad Gateway' }),
  chatNotFound: (): TelegramErrorSpec => ({ error_code: 400, description: 'Bad Request: chat not found' }),
} as const;

const UPDATE_TYPES = new Set([
  'message',
  'edited_message',
  'channel_post',
  'edited_channel_post',
  'business_connection',
  'business_message',
  'edited_business_message',
  'deleted_business_messages',
  'message_reaction',
  'message_reaction_count',
  'inline_query',
  'chosen_inline_result',
  'callback_query',
  'shipping_query',
  'pre_checkout_query',
  'purchased_paid_media',
  'poll',
  'poll_answer',
  'my_chat_member',
  'chat_member',
  'chat_join_request',
  'chat_boost',
  'removed_chat_boost',
]);

const CHAT_ACTIONS = new Set([
  'typing',
  'upload_photo',
  'record_video',
  'upload_video',
  'record_voice',
  'upload_voice',
  'upload_document',
  'choose_sticker',
  'find_location',
  'record_video_note',
  'upload_video_note',
]);

/** Tags Telegram's HTML parse mode accepts (https://core.telegram.org/bots/api#html-style). */
const ALLOWED_TAGS = new Set([
  'b',
  'strong',
  'i',
  'em',
  'u',
  'ins',
  's',
  'strike',
  'del',
  'span',
  'tg-spoiler',
  'a',
  'code',
  'pre',
  'blockquote',
  'tg-emoji',
]);

class ApiFailure extends Error {
  constructor(readonly spec: TelegramErrorSpec) {
    super(spec.description);
  }
}

const badRequest = (what: string) => new ApiFailure({ error_code: 400, description: `Bad Request: ${what}` });

/**
 * Parses Telegram-flavoured HTML the way the Bot API does, well enough to reject what it rejects
 * (unknown tags, unbalanced or mismatched tags, unknown named entities in tags) and to measure the text
 * length after entity parsing. Returns the visible text.
 */
export function parseTelegramHtml(html: string): string {
  const stack: string[] = [];
  let text = '';
  let i = 0;
  const byteOffset = (index: number) => Buffer.byteLength(html.slice(0, index));
  while (i < html.length) {
    const ch = html[i]!;
    if (ch === '<') {
      const close = html.indexOf('>', i);
      if (close === -1)
        throw badRequest(
          `can't parse entities: Unexpected end of name token at byte offset ${byteOffset(i)}`,
        );
      const inner = html.slice(i + 1, close);
      if (inner.startsWith('/')) {
        const name = inner.slice(1).trim().toLowerCase();
        const open = stack.pop();
        if (open === undefined) {
          throw badRequest(`can't parse entities: Unexpected end tag at byte offset ${byteOffset(i)}`);
        }
        if (name !== open) {
          throw badRequest(
            `can't parse entities: Unmatched end tag at byte offset ${byteOffset(i)}, expected "</${open}>", found "</${name}>"`,
          );
        }
      } else {
        const match = /^([a-zA-Z][a-zA-Z0-9-]*)(\s[\s\S]*)?$/.exec(inner);
        if (!match) {
          throw badRequest(
            `can't parse entities: Unexpected end of name token at byte offset ${byteOffset(i)}`,
          );
        }
        const name = match[1]!.toLowerCase();
        if (!ALLOWED_TAGS.has(name)) {
          throw badRequest(
            `can't parse entities: Unsupported start tag "${name}" at byte offset ${byteOffset(i)}`,
          );
        }
        const attrs = match[2] ?? '';
        if (name === 'a' && !/^\s+href\s*=\s*("[^"]*"|'[^']*')\s*$/.test(attrs)) {
          throw badRequest(
            `can't parse entities: Expected equal sign in declaration of an attribute of tag "a" at byte offset ${byteOffset(i)}`,
          );
        }
        stack.push(name);
      }
      i = close + 1;
    } else if (ch === '>') {
      // Telegram tolerates a bare '>' in text.
      text += ch;
      i++;
    } else if (ch === '&') {
      const m = /^&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/.exec(html.slice(i, i + 12));
      if (m) {
        const ent = m[1]!;
        const named: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"' };
        if (ent.startsWith('#x')) text += String.fromCodePoint(Number.parseInt(ent.slice(2), 16));
        else if (ent.startsWith('#')) text += String.fromCodePoint(Number.parseInt(ent.slice(1), 10));
        else text += named[ent] ?? m[0];
        i += m[0].length;
      } else {
        text += ch;
        i++;
      }
    } else {
      text += ch;
      i++;
    }
  }
  if (stack.length > 0) {
    throw badRequest(`can't parse entities: Can't find end tag corresponding to start tag "${stack.at(-1)}"`);
  }
  return text;
}

let updateCounter = 100_000;
let builderMessageId = 5_000;
const nextUpdateId = () => ++updateCounter;
const nowSeconds = () => Math.floor(Date.now() / 1000);

export interface UserSpec {
  id: number;
  first_name?: string;
  username?: string;
  is_bot?: boolean;
}

const user = (u: UserSpec) => ({
  id: u.id,
  is_bot: u.is_bot ?? false,
  first_name: u.first_name ?? `User${u.id}`,
  ...(u.username ? { username: u.username } : {}),
});

/** Builders for realistic updates, each with a process-unique `update_id`. */
export const buildUpdate = {
  privateText(opts: { from: UserSpec; text: string; messageId?: number }) {
    return {
      update_id: nextUpdateId(),
      message: {
        message_id: opts.messageId ?? ++builderMessageId,
        from: user(opts.from),
        chat: {
          id: opts.from.id,
          type: 'private',
          first_name: opts.from.first_name ?? `User${opts.from.id}`,
          ...(opts.from.username ? { username: opts.from.username } : {}),
        },
        date: nowSeconds(),
        text: opts.text,
        ...commandEntities(opts.text),
      },
    };
  },
  groupText(opts: {
    chatId: number;
    from: UserSpec;
    text: string;
    title?: string;
    entities?: Array<Record<string, unknown>>;
    replyTo?: Record<string, unknown>;
    /** 'supergroup' unless told: a basic group is 'group'. */
    chatType?: 'group' | 'supergroup';
  }) {
    return {
      update_id: nextUpdateId(),
      message: {
        message_id: ++builderMessageId,
        from: user(opts.from),
        chat: { id: opts.chatId, type: opts.chatType ?? 'supergroup', title: opts.title ?? 'Test group' },
        date: nowSeconds(),
        text: opts.text,
        ...(opts.entities ? { entities: opts.entities } : commandEntities(opts.text)),
        ...(opts.replyTo ? { reply_to_message: opts.replyTo } : {}),
      },
    };
  },
  /** A group message `@botusername <rest>` with a `mention` entity, as Telegram sends it. */
  groupMention(opts: { chatId: number; from: UserSpec; botUsername: string; rest: string }) {
    const mention = `@${opts.botUsername}`;
    return buildUpdate.groupText({
      chatId: opts.chatId,
      from: opts.from,
      text: `${mention} ${opts.rest}`,
      entities: [{ type: 'mention', offset: 0, length: mention.length }],
    });
  },
  /** A group message mentioning the bot by name (no username) with a `text_mention` entity. */
  groupTextMention(opts: { chatId: number; from: UserSpec; bot: UserSpec; rest: string }) {
    const name = opts.bot.first_name ?? 'Bot';
    return buildUpdate.groupText({
      chatId: opts.chatId,
      from: opts.from,
      text: `${name} ${opts.rest}`,
      entities: [
        { type: 'text_mention', offset: 0, length: name.length, user: user({ ...opts.bot, is_bot: true }) },
      ],
    });
  },
  /** `/command@botusername args` in a group; a bare `/command` without `botUsername`. */
  groupCommand(opts: {
    chatId: number;
    from: UserSpec;
    command: string;
    botUsername?: string;
    args?: string;
  }) {
    const cmd = opts.botUsername === undefined ? `/${opts.command}` : `/${opts.command}@${opts.botUsername}`;
    return buildUpdate.groupText({
      chatId: opts.chatId,
      from: opts.from,
      text: opts.args ? `${cmd} ${opts.args}` : cmd,
      entities: [{ type: 'bot_command', offset: 0, length: cmd.length }],
    });
  },
  /** A group message replying to an earlier message sent by the bot. */
  groupReplyToBot(opts: {
    chatId: number;
    from: UserSpec;
    bot: UserSpec;
    text: string;
    botMessageText?: string;
  }) {
    return buildUpdate.groupText({
      chatId: opts.chatId,
      from: opts.from,
      text: opts.text,
      replyTo: {
        message_id: ++builderMessageId,
        from: user({ ...opts.bot, is_bot: true }),
        chat: { id: opts.chatId, type: 'supergroup', title: 'Test group' },
        date: nowSeconds() - 10,
        text: opts.botMessageText ?? 'Earlier answer',
      },
    });
  },
  /**
   * The same message as a photo with its text as the caption: Telegram moves `text` to `caption` and
   * `entities` to `caption_entities`.
   */
  asPhoto<U extends { update_id: number; message: { text: string; entities?: unknown } }>(update: U) {
    const { text, entities, ...rest } = update.message;
    return {
      update_id: update.update_id,
      message: {
        ...rest,
        photo: [{ file_id: 'AgAC-photo', file_unique_id: 'AQAD', width: 90, height: 60, file_size: 1200 }],
        caption: text,
        ...(entities ? { caption_entities: entities } : {}),
      },
    };
  },
  /**
   * The two service messages of a basic group's upgrade to a supergroup, as Telegram sends them: in the
   * old chat (`migrate_to_chat_id`) and in the new one (`migrate_from_chat_id`).
   */
  chatMigration(opts: { fromChatId: number; toChatId: number; from: UserSpec; title?: string }) {
    const title = opts.title ?? 'Test group';
    const service = (chat: Record<string, unknown>, field: Record<string, number>) => ({
      update_id: nextUpdateId(),
      message: { message_id: ++builderMessageId, from: user(opts.from), chat, date: nowSeconds(), ...field },
    });
    return {
      inOldChat: service(
        { id: opts.fromChatId, type: 'group', title },
        { migrate_to_chat_id: opts.toChatId },
      ),
      inNewChat: service(
        { id: opts.toChatId, type: 'supergroup', title },
        { migrate_from_chat_id: opts.fromChatId },
      ),
    };
  },
  editedPrivateText(opts: { from: UserSpec; text: string; messageId: number }) {
    const base = buildUpdate.privateText(opts);
    return { update_id: base.update_id, edited_message: { ...base.message, edit_date: nowSeconds() } };
  },
};

function commandEntities(text: string) {
  const m = /^\/[a-zA-Z0-9_]+(@[a-zA-Z0-9_]+)?/.exec(text);
  return m ? { entities: [{ type: 'bot_command', offset: 0, length: m[0].length }] } : {};
}

export interface FakeTelegramOptions {
  /** Upper bound on a getUpdates long poll, whatever `timeout` the client asks (default 2000 ms). */
  maxPollMs?: number;
  /** Require https webhook URLs as Telegram does (default false: tests deliver to 127.0.0.1). */
  requireHttps?: boolean;
}

export class FakeTelegram {
  readonly calls: RecordedCall[] = [];
  readonly sent: SentMessage[] = [];
  private readonly bots = new Map<string, BotState>();
  private readonly failures: Failure[] = [];
  private readonly delays = new Map<string, number>();
  private readonly holds = new Map<string, Hold>();
  /** Basic groups upgraded to supergroups: old chat id to new. */
  private readonly migratedChats = new Map<number, number>();
  private down: false | 'reset' | '502' = false;
  private readonly webhookRoutes = new Map<string, string>();
  private loopback: Loopback | undefined;

  constructor(private readonly options: FakeTelegramOptions = {}) {}

  get apiRoot(): string {
    return this.loopback?.origin ?? 'http://127.0.0.1:0';
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent)
          this.reply(res, 500, { ok: false, error_code: 500, description: String(error) });
      });
    });
    this.loopback = await listenOnLoopback(server);
    return this;
  }

  async stop(): Promise<void> {
    for (const bot of this.bots.values()) for (const wake of bot.waiters) wake();
    for (const method of [...this.holds.keys()]) this.release(method);
    const loopback = this.loopback;
    this.loopback = undefined;
    await loopback?.close();
  }

  /** Registers a bot token with the identity getMe answers. */
  addBot(token: string, identity: Omit<BotIdentity, 'is_bot'>): BotIdentity {
    const full: BotIdentity = { ...identity, is_bot: true };
    this.bots.set(token, {
      identity: full,
      webhook: undefined,
      queue: [],
      waiters: new Set(),
      nextMessageId: 1,
    });
    return full;
  }

  removeBot(token: string): void {
    this.bots.delete(token);
  }

  /**
   * The next `count` calls of `method` (for `token`, or any token) fail with `error`; with `after`,
   * only once that many matching calls have succeeded first.
   */
  failNext(method: string, count: number, error: TelegramErrorSpec, token?: string, after = 0): void {
    this.failures.push({ method, token, remaining: count, skip: after, error });
  }

  /**
   * The basic group `fromChatId` became the supergroup `toChatId`: from now on sends to the old id
   * are refused as Telegram refuses them, naming the new id.
   */
  migrateChat(fromChatId: number, toChatId: number): void {
    this.migratedChats.set(fromChatId, toChatId);
  }

  /** Every call of `method` ('*' for all) waits `ms` before answering. 0 removes the delay. */
  setDelay(method: string, ms: number): void {
    if (ms > 0) this.delays.set(method, ms);
    else this.delays.delete(method);
  }

  /**
   * Calls of `method` after the next `after` ones wait unanswered until `release(method)`. One whose
   * client hangs up while it waits (a process killed mid-call) is dropped: it never reached Telegram.
   */
  hold(method: string, after = 0): void {
    this.holds.set(method, { passing: after, waiting: new Set() });
  }

  /** Lets the held calls of `method` through, and every later one. */
  release(method: string): void {
    const hold = this.holds.get(method);
    this.holds.delete(method);
    for (const wake of hold?.waiting ?? []) wake();
  }

  /** How many calls of `method` are waiting on a hold. */
  heldCalls(method: string): number {
    return this.holds.get(method)?.waiting.size ?? 0;
  }

  /** Resolves true when the call was held and its client went away meanwhile. */
  private async droppedWhileHeld(method: string, res: ServerResponse): Promise<boolean> {
    const hold = this.holds.get(method);
    if (!hold) return false;
    if (hold.passing > 0) {
      hold.passing -= 1;
      return false;
    }
    await new Promise<void>((resolve) => {
      const wake = () => {
        hold.waiting.delete(wake);
        res.off('close', wake);
        resolve();
      };
      hold.waiting.add(wake);
      res.once('close', wake);
    });
    return res.destroyed;
  }

  /** 'reset': connections are destroyed without an answer; '502': a gateway error page; false: back up. */
  setDown(mode: false | 'reset' | '502'): void {
    this.down = mode;
    if (mode === 'reset') for (const socket of this.loopback?.sockets ?? []) socket.destroy();
  }

  callsOf(method: string, token?: string): RecordedCall[] {
    return this.calls.filter((c) => c.method === method && (token === undefined || c.token === token));
  }

  /**
   * Stands in for DNS and TLS: webhook deliveries to a URL under `publicBase` (what the platform must
   * register: an https URL) go to the same path under `loopbackBase` (the app under test on 127.0.0.1).
   */
  routeWebhooks(publicBase: string, loopbackBase: string): void {
    this.webhookRoutes.set(publicBase.replace(/\/+$/, ''), loopbackBase.replace(/\/+$/, ''));
  }

  private routed(url: string): string {
    for (const [from, to] of this.webhookRoutes)
      if (url.startsWith(`${from}/`)) return to + url.slice(from.length);
    return url;
  }

  webhookOf(token: string): WebhookState | undefined {
    return this.bot(token).webhook;
  }

  /** Queues updates for getUpdates (polling mode), waking any long poll. */
  queueUpdate(token: string, ...updates: Record<string, unknown>[]): void {
    const bot = this.bot(token);
    bot.queue.push(...updates);
    for (const wake of bot.waiters) wake();
  }

  /**
   * POSTs `update` to the bot's webhook exactly as Telegram does (JSON body, the
   * `X-Telegram-Bot-Api-Secret-Token` header when a secret was set). Returns the HTTP status; a failed
   * delivery is recorded as the webhook's last error and the update stays pending.
   */
  async deliverUpdate(token: string, update: Record<string, unknown>, timeoutMs = 10_000): Promise<number> {
    const bot = this.bot(token);
    const hook = bot.webhook;
    if (!hook) throw new Error(`bot ${bot.identity.username} has no webhook set`);
    const type = Object.keys(update).find((k) => k !== 'update_id');
    if (hook.allowedUpdates && type && !hook.allowedUpdates.includes(type)) return 0;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (hook.secretToken) headers['x-telegram-bot-api-secret-token'] = hook.secretToken;
    try {
      const res = await fetch(this.routed(hook.url), {
        method: 'POST',
        headers,
        body: JSON.stringify(update),
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.arrayBuffer();
      if (res.status >= 200 && res.status < 300) return res.status;
      this.recordWebhookError(
        bot,
        `Wrong response from the webhook: ${res.status} ${res.statusText}`,
        update,
      );
      return res.status;
    } catch (error) {
      this.recordWebhookError(bot, `Connection refused (${(error as Error).message})`, update);
      return 0;
    }
  }

  private recordWebhookError(bot: BotState, message: string, update: Record<string, unknown>): void {
    if (bot.webhook) {
      bot.webhook.lastErrorDate = nowSeconds();
      bot.webhook.lastErrorMessage = message;
    }
    bot.queue.push(update);
  }

  private bot(token: string): BotState {
    const bot = this.bots.get(token);
    if (!bot) throw new Error('unknown bot token');
    return bot;
  }

  private reply(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.down === 'reset') {
      req.socket.destroy();
      return;
    }
    if (this.down === '502') {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><body><h1>502 Bad Gateway</h1></body></html>');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const match = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(url.pathname);
    if (!match) {
      this.reply(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
      return;
    }
    const token = decodeURIComponent(match[1]!);
    const method = match[2]!;
    let params: Record<string, unknown>;
    try {
      params = { ...Object.fromEntries(url.searchParams), ...(await readParams(req)) };
    } catch (error) {
      if (error instanceof ApiFailure) this.sendError(res, error.spec);
      else this.sendError(res, { error_code: 400, description: "Bad Request: can't parse JSON object" });
      return;
    }
    this.calls.push({ method, token, params, at: new Date() });

    if (await this.droppedWhileHeld(method, res)) return;
    const delay = this.delays.get(method) ?? this.delays.get('*') ?? 0;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));

    const bot = this.bots.get(token);
    if (!bot) {
      this.reply(res, 401, { ok: false, error_code: 401, description: 'Unauthorized' });
      return;
    }
    const failure = this.failures.find(
      (f) => f.remaining > 0 && (f.method === method || f.method === '*') && (!f.token || f.token === token),
    );
    if (failure && failure.skip > 0) failure.skip--;
    else if (failure) {
      failure.remaining--;
      this.sendError(res, failure.error);
      return;
    }
    try {
      const result = await this.dispatch(bot, token, method, params, req);
      this.reply(res, 200, { ok: true, result });
    } catch (error) {
      if (error instanceof ApiFailure) this.sendError(res, error.spec);
      else throw error;
    }
  }

  private sendError(res: ServerResponse, spec: TelegramErrorSpec): void {
    this.reply(res, spec.error_code, {
      ok: false,
      error_code: spec.error_code,
      description: spec.description,
      ...(spec.parameters ? { parameters: spec.parameters } : {}),
    });
  }

  private async dispatch(
    bot: BotState,
    token: string,
    method: string,
    params: Record<string, unknown>,
    req: IncomingMessage,
  ): Promise<unknown> {
    const movedTo = this.migratedChats.get(Number(params.chat_id));
    if (movedTo !== undefined && (method === 'sendMessage' || method === 'sendChatAction')) {
      throw new ApiFailure({
        error_code: 400,
        description: 'Bad Request: group chat was upgraded to a supergroup chat',
        parameters: { migrate_to_chat_id: movedTo },
      });
    }
    // A forum's General topic: Telegram refuses its thread id in sendMessage (and takes it in sendChatAction).
    if (method === 'sendMessage' && Number(params.message_thread_id) === 1) {
      throw badRequest('message thread not found');
    }
    switch (method) {
      case 'getMe':
        return bot.identity;
      case 'logOut':
      case 'close':
        return true;
      case 'setWebhook':
        return this.setWebhook(bot, params);
      case 'deleteWebhook':
        bot.webhook = undefined;
        if (truthy(params.drop_pending_updates)) bot.queue = [];
        return true;
      case 'getWebhookInfo':
        return {
          url: bot.webhook?.url ?? '',
          has_custom_certificate: false,
          pending_update_count: bot.queue.length,
          ...(bot.webhook?.lastErrorDate
            ? { last_error_date: bot.webhook.lastErrorDate, last_error_message: bot.webhook.lastErrorMessage }
            : {}),
          ...(bot.webhook?.allowedUpdates ? { allowed_updates: bot.webhook.allowedUpdates } : {}),
        };
      case 'getUpdates':
        return this.getUpdates(bot, params, req);
      case 'sendMessage':
        return this.sendMessage(bot, token, params);
      case 'sendChatAction': {
        requireChat(params);
        const action = String(params.action ?? '');
        if (!CHAT_ACTIONS.has(action)) throw badRequest('wrong parameter action in request');
        return true;
      }
      case 'setMyCommands':
      case 'deleteMyCommands':
        return true;
      default:
        throw new ApiFailure({ error_code: 404, description: 'Not Found: method not found' });
    }
  }

  private setWebhook(bot: BotState, params: Record<string, unknown>): true {
    const url = String(params.url ?? '');
    if (url === '') {
      bot.webhook = undefined;
      return true;
    }
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw badRequest('bad webhook: Failed to resolve host: Name or service not known');
    }
    if (this.options.requireHttps && parsed.protocol !== 'https:') {
      throw badRequest('bad webhook: An HTTPS URL must be provided for webhook');
    }
    const secret = params.secret_token === undefined ? undefined : String(params.secret_token);
    if (secret !== undefined && !/^[A-Za-z0-9_-]{1,256}$/.test(secret)) {
      throw badRequest('secret token contains unallowed characters');
    }
    let allowed = params.allowed_updates;
    if (typeof allowed === 'string') allowed = JSON.parse(allowed);
    if (allowed !== undefined && !Array.isArray(allowed)) throw badRequest('wrong parameter allowed_updates');
    const allowedUpdates = (allowed as unknown[] | undefined)?.map(String).filter((t) => UPDATE_TYPES.has(t));
    if (truthy(params.drop_pending_updates)) bot.queue = [];
    bot.webhook = {
      url,
      secretToken: secret,
      allowedUpdates: allowedUpdates && allowedUpdates.length > 0 ? allowedUpdates : undefined,
      lastErrorDate: undefined,
      lastErrorMessage: undefined,
    };
    return true;
  }

  private async getUpdates(
    bot: BotState,
    params: Record<string, unknown>,
    req: IncomingMessage,
  ): Promise<Record<string, unknown>[]> {
    if (bot.webhook) {
      throw new ApiFailure({
        error_code: 409,
        description:
          "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
      });
    }
    const offset = params.offset === undefined ? undefined : Number(params.offset);
    if (offset !== undefined && offset > 0) {
      bot.queue = bot.queue.filter((u) => Number(u.update_id) >= offset);
    }
    const limit = Math.min(Math.max(Number(params.limit ?? 100), 1), 100);
    const timeoutMs = Math.min(Number(params.timeout ?? 0) * 1000, this.options.maxPollMs ?? 2_000);
    if (bot.queue.length === 0 && timeoutMs > 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          bot.waiters.delete(done);
          req.off('close', done);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        bot.waiters.add(done);
        req.once('close', done);
      });
    }
    let updates = bot.queue.slice(0, limit);
    let allowed = params.allowed_updates;
    if (typeof allowed === 'string') allowed = JSON.parse(allowed);
    if (Array.isArray(allowed) && allowed.length > 0) {
      const set = new Set(allowed.map(String));
      updates = updates.filter((u) => Object.keys(u).some((k) => k !== 'update_id' && set.has(k)));
    }
    return updates;
  }

  private sendMessage(
    bot: BotState,
    token: string,
    params: Record<string, unknown>,
  ): Record<string, unknown> {
    const chatId = requireChat(params);
    const raw = params.text === undefined ? '' : String(params.text);
    const parseMode = params.parse_mode === undefined ? undefined : String(params.parse_mode);
    let visible = raw;
    if (parseMode !== undefined) {
      if (parseMode.toLowerCase() === 'html') visible = parseTelegramHtml(raw);
      else if (!['markdown', 'markdownv2'].includes(parseMode.toLowerCase())) {
        throw badRequest(`unsupported parse_mode`);
      }
    }
    if (visible.trim().length === 0) throw badRequest('message text is empty');
    if (visible.length > 4096) throw badRequest('message is too long');
    const messageId = bot.nextMessageId++;
    this.sent.push({ token, chatId, messageId, text: raw, parseMode, params });
    const numericChat = Number(chatId);
    let reply = params.reply_parameters;
    if (typeof reply === 'string') reply = JSON.parse(reply);
    return {
      message_id: messageId,
      from: bot.identity,
      chat: Number.isFinite(numericChat)
        ? numericChat < 0
          ? { id: numericChat, type: 'supergroup', title: 'Test group' }
          : { id: numericChat, type: 'private', first_name: `User${numericChat}` }
        : { id: -100, type: 'channel', title: String(chatId) },
      date: nowSeconds(),
      text: visible,
      ...(reply && typeof reply === 'object' && 'message_id' in reply
        ? { reply_to_message: { message_id: Number((reply as { message_id: unknown }).message_id) } }
        : {}),
    };
  }
}

function requireChat(params: Record<string, unknown>): number | string {
  const chat = params.chat_id;
  if (chat === undefined || chat === '') throw badRequest('chat_id is empty');
  return typeof chat === 'number' ? chat : String(chat);
}

function truthy(value: unknown): boolean {
  return value === true || value === 'true' || value === 1 || value === '1';
}

async function readParams(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks).toString('utf8');
  if (body === '') return {};
  const type = req.headers['content-type'] ?? '';
  if (type.includes('application/json')) {
    const parsed: unknown = JSON.parse(body);
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
  }
  if (type.includes('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(body));
  }
  throw badRequest('unsupported content type');
}

/** Starts a fake Telegram Bot API; call `stop()` in afterAll/afterEach. */
export async function startFakeTelegram(options: FakeTelegramOptions = {}): Promise<FakeTelegram> {
  return new FakeTelegram(options).start();
}
