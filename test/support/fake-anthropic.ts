import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type Loopback, listenOnLoopback } from './loopback';

/**
 * A fake Anthropic API on 127.0.0.1 that the REAL @anthropic-ai/sdk talks to (baseURL = `fake.baseURL`).
 * Authenticates with `x-api-key` or `Authorization: Bearer`. Implements POST /v1/messages (non-streaming), GET /v1/models (paginated) and GET /v1/models/:id with
 * Anthropic's error envelope `{ type: 'error', error: { type, message }, request_id }`.
 */

export interface ModelInfo {
  id: string;
  display_name: string;
  created_at: string;
}

export interface MessagesRequest {
  model: string;
  max_tokens: number;
  system?: string | Array<{ type: 'text'; text: string; cache_control?: { type: string } }>;
  messages: Array<{ role: 'user' | 'assistant'; content: string | Array<{ type: string; text?: string }> }>;
  temperature?: number;
  [key: string]: unknown;
}

export interface RecordedAnthropicRequest {
  method: string;
  path: string;
  apiKey: string | undefined;
  headers: Record<string, string>;
  body: MessagesRequest | undefined;
  at: Date;
}

export interface AnthropicErrorSpec {
  status: number;
  type: string;
  message: string;
  /** Seconds, sent as the retry-after header. */
  retryAfter?: number;
}

export const ANTHROPIC_ERRORS = {
  rateLimited: (retryAfter = 2): AnthropicErrorSpec => ({
    status: 429,
    type: 'rate_limit_error',
    message: 'Number of request tokens has exceeded your per-minute rate limit',
    retryAfter,
  }),
  overloaded: (retryAfter?: number): AnthropicErrorSpec => ({
    status: 529,
    type: 'overloaded_error',
    message: 'Overloaded',
    ...(retryAfter === undefined ? {} : { retryAfter }),
  }),
  apiError: (): AnthropicErrorSpec => ({ status: 500, type: 'api_error', message: 'Internal server error' }),
  unauthorized: (): AnthropicErrorSpec => ({
    status: 401,
    type: 'authentication_error',
    message: 'invalid x-api-key',
  }),
  permission: (): AnthropicErrorSpec => ({
    status: 403,
    type: 'permission_error',
    message: 'Your API key does not have permission to use the specified resource.',
  }),
  invalidRequest: (message = 'messages: at least one message is required'): AnthropicErrorSpec => ({
    status: 400,
    type: 'invalid_request_error',
    message,
  }),
} as const;

/** Current models (none in the SDK's deprecation table, which would make it print warnings). */
export const DEFAULT_MODELS: ModelInfo[] = [
  { id: 'claude-opus-5-5', display_name: 'Claude Opus 5.5', created_at: '2026-09-01T00:00:00Z' },
  { id: 'claude-sonnet-5-5', display_name: 'Claude Sonnet 5.5', created_at: '2026-09-01T00:00:00Z' },
  { id: 'claude-haiku-5-5', display_name: 'Claude Haiku 5.5', created_at: '2026-09-01T00:00:00Z' },
  { id: 'claude-sonnet-4-6', display_name: 'Claude Sonnet 4.6', created_at: '2026-02-17T00:00:00Z' },
  { id: 'claude-haiku-4-5', display_name: 'Claude Haiku 4.5', created_at: '2025-10-01T00:00:00Z' },
];

export type ReplyFn = (request: MessagesRequest) => string;

interface Scripted {
  key: string | undefined;
  remaining: number;
  error: AnthropicErrorSpec;
}

/** Deterministic token estimate: one token per four characters, rounded up. */
export const estimateTokens = (text: string): number => Math.ceil(text.length / 4);

function contentText(content: MessagesRequest['messages'][number]['content']): string {
  return typeof content === 'string' ? content : content.map((b) => b.text ?? '').join('');
}

/** The default reply: echoes the last user message, so tests can see what reached the model. */
const echoReply: ReplyFn = (request) => {
  const last = [...request.messages].reverse().find((m) => m.role === 'user');
  return `Echo: ${last ? contentText(last.content) : ''}`;
};

export class FakeAnthropic {
  readonly requests: RecordedAnthropicRequest[] = [];
  private readonly validKeys = new Set<string>();
  private readonly modelsByKey = new Map<string, ModelInfo[]>();
  private models: ModelInfo[] = DEFAULT_MODELS;
  private replies = new Map<string | undefined, ReplyFn>();
  private readonly scripted: Scripted[] = [];
  private delayMs = 0;
  private inFlight = 0;
  /** The most requests that were being answered at once (with a delay set, overlapping calls show here). */
  maxInFlight = 0;
  private down = false;
  private readonly cachedPrefixes = new Set<string>();
  private loopback: Loopback | undefined;

  get baseURL(): string {
    return this.loopback?.origin ?? 'http://127.0.0.1:0';
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) this.sendError(res, { status: 500, type: 'api_error', message: String(error) });
      });
    });
    this.loopback = await listenOnLoopback(server);
    return this;
  }

  async stop(): Promise<void> {
    const loopback = this.loopback;
    this.loopback = undefined;
    await loopback?.close();
  }

  addKey(key: string, models?: ModelInfo[]): void {
    this.validKeys.add(key);
    if (models) this.modelsByKey.set(key, models);
  }

  /** The models every key without its own list sees. */
  setModels(models: ModelInfo[]): void {
    this.models = models;
  }

  /** Reply text (or a function of the request) for `key`, or for every key when omitted. */
  setReply(reply: string | ReplyFn, key?: string): void {
    this.replies.set(key, typeof reply === 'string' ? () => reply : reply);
  }

  /** The next `count` requests (of `key`, or any) answer with `error`. */
  failNext(count: number, error: AnthropicErrorSpec, key?: string): void {
    this.scripted.push({ key, remaining: count, error });
  }

  setDelay(ms: number): void {
    this.delayMs = ms;
  }

  /** Down: every connection is destroyed without an answer. */
  setDown(down: boolean): void {
    this.down = down;
    if (down) for (const socket of this.loopback?.sockets ?? []) socket.destroy();
  }

  messageRequests(key?: string): MessagesRequest[] {
    return this.requests
      .filter((r) => r.path === '/v1/messages' && r.body && (key === undefined || r.apiKey === key))
      .map((r) => r.body!);
  }

  private modelsFor(key: string): ModelInfo[] {
    return this.modelsByKey.get(key) ?? this.models;
  }

  private sendError(res: ServerResponse, spec: AnthropicErrorSpec): void {
    const requestId = `req_${randomBytes(12).toString('hex')}`;
    const headers: Record<string, string> = { 'content-type': 'application/json', 'request-id': requestId };
    if (spec.retryAfter !== undefined) headers['retry-after'] = String(spec.retryAfter);
    res.writeHead(spec.status, headers);
    res.end(
      JSON.stringify({
        type: 'error',
        error: { type: spec.type, message: spec.message },
        request_id: requestId,
      }),
    );
  }

  private sendJson(res: ServerResponse, body: unknown): void {
    res.writeHead(200, {
      'content-type': 'application/json',
      'request-id': `req_${randomBytes(12).toString('hex')}`,
    });
    res.end(JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.down) {
      req.socket.destroy();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const headers = Object.fromEntries(
      Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]),
    );
    const raw = await readBody(req);
    // Older SDKs send the key as x-api-key; the current one (1.x) sends `Authorization: Bearer <key>`.
    const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? '')?.[1];
    const apiKey = headers['x-api-key'] ?? bearer;
    let body: MessagesRequest | undefined;
    if (raw !== '') {
      try {
        body = JSON.parse(raw) as MessagesRequest;
      } catch {
        this.record(req, url, apiKey, headers, undefined);
        this.sendError(res, {
          status: 400,
          type: 'invalid_request_error',
          message: 'Invalid JSON in request body',
        });
        return;
      }
    }
    this.record(req, url, apiKey, headers, body);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      this.answer(req, res, url, apiKey, headers, body);
    } finally {
      this.inFlight -= 1;
    }
  }

  private answer(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    apiKey: string | undefined,
    headers: Record<string, string>,
    body: MessagesRequest | undefined,
  ): void {
    if (!apiKey || !this.validKeys.has(apiKey)) {
      this.sendError(
        res,
        headers['x-api-key'] === undefined
          ? { ...ANTHROPIC_ERRORS.unauthorized(), message: 'invalid bearer token' }
          : ANTHROPIC_ERRORS.unauthorized(),
      );
      return;
    }
    if (!headers['anthropic-version']) {
      this.sendError(res, {
        status: 400,
        type: 'invalid_request_error',
        message: 'anthropic-version: header is required',
      });
      return;
    }
    const script = this.scripted.find((s) => s.remaining > 0 && (!s.key || s.key === apiKey));
    if (script) {
      script.remaining--;
      this.sendError(res, script.error);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/v1/models') {
      this.sendJson(res, this.listModels(apiKey, url.searchParams));
      return;
    }
    const modelMatch = /^\/v1\/models\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && modelMatch) {
      const id = decodeURIComponent(modelMatch[1]!);
      const model = this.modelsFor(apiKey).find((m) => m.id === id);
      if (!model) this.sendError(res, { status: 404, type: 'not_found_error', message: `model: ${id}` });
      else this.sendJson(res, { type: 'model', ...model });
      return;
    }
    if (req.method === 'POST' && url.pathname === '/v1/messages') {
      this.messages(res, apiKey, body);
      return;
    }
    this.sendError(res, { status: 404, type: 'not_found_error', message: 'Not Found' });
  }

  private record(
    req: IncomingMessage,
    url: URL,
    apiKey: string | undefined,
    headers: Record<string, string>,
    body: MessagesRequest | undefined,
  ): void {
    this.requests.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      apiKey,
      headers,
      body,
      at: new Date(),
    });
  }

  private listModels(key: string, params: URLSearchParams) {
    const all = this.modelsFor(key);
    const limit = Math.min(Math.max(Number(params.get('limit') ?? 20) || 20, 1), 1000);
    const after = params.get('after_id');
    const before = params.get('before_id');
    let start = 0;
    let end = all.length;
    if (after) start = all.findIndex((m) => m.id === after) + 1;
    if (before)
      end = Math.max(
        all.findIndex((m) => m.id === before),
        0,
      );
    let page: ModelInfo[];
    let hasMore: boolean;
    if (before && !after) {
      page = all.slice(Math.max(end - limit, 0), end);
      hasMore = end - limit > 0;
    } else {
      page = all.slice(start, Math.min(start + limit, end));
      hasMore = start + limit < end;
    }
    return {
      data: page.map((m) => ({ type: 'model', ...m })),
      has_more: hasMore,
      first_id: page[0]?.id ?? null,
      last_id: page.at(-1)?.id ?? null,
    };
  }

  private messages(res: ServerResponse, apiKey: string, body: MessagesRequest | undefined): void {
    if (!body) {
      this.sendError(res, ANTHROPIC_ERRORS.invalidRequest('model: Field required'));
      return;
    }
    if (typeof body.model !== 'string') {
      this.sendError(res, ANTHROPIC_ERRORS.invalidRequest('model: Field required'));
      return;
    }
    if (typeof body.max_tokens !== 'number' || body.max_tokens < 1) {
      this.sendError(res, ANTHROPIC_ERRORS.invalidRequest('max_tokens: Field required'));
      return;
    }
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      this.sendError(res, ANTHROPIC_ERRORS.invalidRequest('messages: at least one message is required'));
      return;
    }
    if (body.messages[0]?.role !== 'user') {
      this.sendError(
        res,
        ANTHROPIC_ERRORS.invalidRequest('messages: first message must use the "user" role'),
      );
      return;
    }
    if (body.temperature !== undefined && (body.temperature < 0 || body.temperature > 1)) {
      this.sendError(res, ANTHROPIC_ERRORS.invalidRequest('temperature: range: 0..1'));
      return;
    }
    if (!this.modelsFor(apiKey).some((m) => m.id === body.model)) {
      this.sendError(res, { status: 404, type: 'not_found_error', message: `model: ${body.model}` });
      return;
    }
    const reply = (this.replies.get(apiKey) ?? this.replies.get(undefined) ?? echoReply)(body);

    // Usage: the cached prefix (system blocks up to the last cache_control) is written once and read after.
    const systemBlocks =
      typeof body.system === 'string' ? [{ type: 'text' as const, text: body.system }] : (body.system ?? []);
    const lastCached = systemBlocks.findLastIndex((b) => b.cache_control !== undefined);
    const cachedText = systemBlocks
      .slice(0, lastCached + 1)
      .map((b) => b.text)
      .join('');
    const restText =
      systemBlocks
        .slice(lastCached + 1)
        .map((b) => b.text)
        .join('') + body.messages.map((m) => contentText(m.content)).join('');
    let cacheCreation = 0;
    let cacheRead = 0;
    if (cachedText !== '') {
      const hash = createHash('sha256').update(`${apiKey}\0${body.model}\0${cachedText}`).digest('hex');
      if (this.cachedPrefixes.has(hash)) cacheRead = estimateTokens(cachedText);
      else {
        this.cachedPrefixes.add(hash);
        cacheCreation = estimateTokens(cachedText);
      }
    }
    const maxChars = body.max_tokens * 4;
    const truncated = reply.length > maxChars;
    const text = truncated ? reply.slice(0, maxChars) : reply;
    this.sendJson(res, {
      id: `msg_${randomBytes(12).toString('hex')}`,
      type: 'message',
      role: 'assistant',
      model: body.model,
      content: [{ type: 'text', text }],
      stop_reason: truncated ? 'max_tokens' : 'end_turn',
      stop_sequence: null,
      usage: {
        input_tokens: estimateTokens(restText),
        output_tokens: estimateTokens(text),
        cache_creation_input_tokens: cacheCreation,
        cache_read_input_tokens: cacheRead,
      },
    });
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts a fake Anthropic API; call `stop()` in afterAll/afterEach. */
export async function startFakeAnthropic(): Promise<FakeAnthropic> {
  return new FakeAnthropic().start();
}
