import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerTimeoutMs, createClaudeClient } from '../../lib/claude/client';
import { type ClaudeErrorKind, classifyClaudeError, parseRetryAfter } from '../../lib/claude/errors';
import { CACHEABLE_SYSTEM_TOKENS, generateReply } from '../../lib/claude/reply';
import { validateClaudeKey } from '../../lib/claude/validate';
import { CHARS_PER_TOKEN } from '../../lib/conversation/tokens';
import {
  ANTHROPIC_ERRORS,
  DEFAULT_MODELS,
  type FakeAnthropic,
  startFakeAnthropic,
} from '../support/fake-anthropic';
import { closedPort } from '../support/loopback';

const KEY = 'sk-ant-api03-valid-key-aaaaaaaaaaaaaaaa';
const LIMITED = 'sk-ant-api03-limited-key-bbbbbbbbbbbbb';
const MODEL = 'claude-sonnet-5-5';

let fake: FakeAnthropic;
beforeAll(async () => {
  fake = await startFakeAnthropic();
  fake.addKey(KEY);
  fake.addKey(LIMITED, [DEFAULT_MODELS[2]!]);
});
afterAll(() => fake.stop());

const client = (key = KEY, timeoutMs = 5_000) =>
  createClaudeClient(key, { baseURL: fake.baseURL, timeoutMs });
const ask = (key = KEY, extra: Partial<Parameters<typeof generateReply>[0]> = {}) =>
  generateReply({
    client: client(key),
    model: MODEL,
    messages: [{ role: 'user', content: 'Hello there' }],
    maxTokens: 256,
    ...extra,
  });

async function failureOf(call: () => Promise<unknown>): Promise<ClaudeErrorKind> {
  try {
    await call();
  } catch (error) {
    return classifyClaudeError(error);
  }
  throw new Error('call succeeded');
}

describe('generateReply with the real SDK', () => {
  it('returns the text, usage and stop reason, and sends what it was given', async () => {
    const reply = await ask(KEY, { system: 'Be brief.', temperature: 0.3 });
    expect(reply).toEqual({
      text: 'Echo: Hello there',
      inputTokens: Math.ceil(('Be brief.'.length + 'Hello there'.length) / 4),
      outputTokens: Math.ceil('Echo: Hello there'.length / 4),
      cacheReadTokens: 0,
      cacheCreationTokens: 0,
      stopReason: 'end_turn',
    });
    const req = fake.requests.at(-1)!;
    expect(req.apiKey).toBe(KEY);
    expect(req.headers['anthropic-version']).toBeTruthy();
    expect(req.body).toMatchObject({
      model: MODEL,
      max_tokens: 256,
      temperature: 0.3,
      system: [{ type: 'text', text: 'Be brief.' }],
      messages: [{ role: 'user', content: 'Hello there' }],
    });
    expect((req.body!.system as Array<Record<string, unknown>>)[0]).not.toHaveProperty('cache_control');
  });

  it('marks a long system prompt cacheable: written once, then read', async () => {
    const system = `You are a helpful agent. ${'Policy line. '.repeat(Math.ceil((CACHEABLE_SYSTEM_TOKENS * CHARS_PER_TOKEN) / 13))}`;
    const first = await ask(KEY, { system });
    const second = await ask(KEY, { system });
    const sent = fake.messageRequests(KEY).at(-1)!;
    expect(sent.system).toEqual([
      { type: 'text', text: system.trim(), cache_control: { type: 'ephemeral' } },
    ]);
    expect(first.cacheCreationTokens).toBe(Math.ceil(system.trim().length / 4));
    expect(first.cacheReadTokens).toBe(0);
    expect(second.cacheReadTokens).toBe(first.cacheCreationTokens);
    expect(second.cacheCreationTokens).toBe(0);
  });

  it('judges a prompt cacheable by its tokens, not its characters: a Chinese prompt under 4096 characters', async () => {
    // About a token a character: 1,100 characters are over the 1024-token minimum.
    const system = '你是一个乐于助人的客服助手。'.repeat(80);
    expect(system.length).toBeLessThan(4096);
    await ask(KEY, { system });
    expect(fake.messageRequests(KEY).at(-1)!.system).toEqual([
      { type: 'text', text: system, cache_control: { type: 'ephemeral' } },
    ]);
    // Just under the minimum, in English, the prompt goes as a plain block.
    const short = 'Policy line. '.repeat(Math.floor((CACHEABLE_SYSTEM_TOKENS * CHARS_PER_TOKEN) / 13) - 1);
    await ask(KEY, { system: short });
    expect(
      (fake.messageRequests(KEY).at(-1)!.system as Array<Record<string, unknown>>)[0],
    ).not.toHaveProperty('cache_control');
  });

  it('uses scripted replies (per key, function of the request) and reports max_tokens truncation', async () => {
    fake.setReply((req) => `You said ${req.messages.length} things`, LIMITED);
    const reply = await ask(LIMITED, { model: 'claude-haiku-5-5' });
    expect(reply.text).toBe('You said 1 things');
    fake.setReply('x'.repeat(10_000), KEY);
    const long = await ask(KEY, { maxTokens: 100 });
    expect(long).toMatchObject({ stopReason: 'max_tokens', outputTokens: 100 });
    expect(long.text).toHaveLength(400);
    fake.setReply((req) => `Echo: ${String(req.messages.at(-1)?.content)}`, KEY);
  });
});

describe('answerTimeoutMs', () => {
  it('gives a long answer the time a slow model needs, between 120 s and the SDK ceiling of 10 minutes', () => {
    expect(answerTimeoutMs(256)).toBe(120_000);
    expect(answerTimeoutMs(1024)).toBe(120_000);
    // 8,192 tokens at 20 tokens/s is 409.6 s, plus a minute to read the context.
    expect(answerTimeoutMs(8192)).toBe(469_600);
    expect(answerTimeoutMs(4096)).toBeGreaterThan(answerTimeoutMs(2048));
    expect(answerTimeoutMs(64_000)).toBe(600_000);
  });

  it('is the timeout the SDK client gets', () => {
    const long = createClaudeClient(KEY, { baseURL: fake.baseURL, timeoutMs: answerTimeoutMs(8192) });
    expect(long.timeout).toBe(469_600);
    expect(createClaudeClient(KEY).timeout).toBe(120_000);
  });
});

describe('classifyClaudeError', () => {
  it('429 with retry-after', async () => {
    fake.failNext(1, ANTHROPIC_ERRORS.rateLimited(17), KEY);
    expect(await failureOf(() => ask())).toEqual({ kind: 'retry_after', seconds: 17, status: 429 });
  });

  it('529 overloaded without retry-after gets the default wait', async () => {
    fake.failNext(1, ANTHROPIC_ERRORS.overloaded());
    expect(await failureOf(() => ask())).toEqual({ kind: 'retry_after', seconds: 15, status: 529 });
  });

  it('500 api_error is retryable', async () => {
    fake.failNext(1, ANTHROPIC_ERRORS.apiError());
    expect(await failureOf(() => ask())).toEqual({
      kind: 'retryable',
      message: 'api_error: Internal server error',
    });
  });

  it('401 and 403 are invalid credentials', async () => {
    expect(await failureOf(() => ask('sk-ant-wrong'))).toEqual({ kind: 'invalid_credential', status: 401 });
    fake.failNext(1, ANTHROPIC_ERRORS.permission());
    expect(await failureOf(() => ask())).toEqual({ kind: 'invalid_credential', status: 403 });
  });

  it('400 is a non-retriable bad request, with the API message', async () => {
    expect(await failureOf(() => ask(KEY, { messages: [] }))).toEqual({
      kind: 'bad_request',
      message: 'invalid_request_error: messages: at least one message is required',
    });
  });

  it('an unknown model is model_unavailable', async () => {
    expect(await failureOf(() => ask(LIMITED))).toEqual({
      kind: 'model_unavailable',
      message: `not_found_error: model: ${MODEL}`,
    });
  });

  it('a dropped connection, a closed port and a timeout are retryable', async () => {
    fake.setDown(true);
    try {
      expect((await failureOf(() => ask())).kind).toBe('retryable');
    } finally {
      fake.setDown(false);
    }
    const port = await closedPort();
    const closed = createClaudeClient(KEY, { baseURL: `http://127.0.0.1:${port}`, timeoutMs: 2_000 });
    expect(
      (
        await failureOf(() =>
          generateReply({
            client: closed,
            model: MODEL,
            messages: [{ role: 'user', content: 'x' }],
            maxTokens: 5,
          }),
        )
      ).kind,
    ).toBe('retryable');
    fake.setDelay(1_500);
    try {
      const slow = createClaudeClient(KEY, { baseURL: fake.baseURL, timeoutMs: 500 });
      expect(
        (
          await failureOf(() =>
            generateReply({
              client: slow,
              model: MODEL,
              messages: [{ role: 'user', content: 'x' }],
              maxTokens: 5,
            }),
          )
        ).kind,
      ).toBe('retryable');
    } finally {
      fake.setDelay(0);
    }
  });

  it('a non-SDK error is fatal', () => {
    expect(classifyClaudeError(new TypeError('bug'))).toEqual({ kind: 'fatal', message: 'bug' });
  });

  it('parses retry-after seconds and HTTP dates', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('12', now)).toBe(12);
    expect(parseRetryAfter('1.2', now)).toBe(2);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});

describe('validateClaudeKey', () => {
  it('valid key with the model, paging through the whole list', async () => {
    const many = Array.from({ length: 230 }, (_, i) => ({
      id: `claude-test-${i}`,
      display_name: `Test ${i}`,
      created_at: '2025-01-01T00:00:00Z',
    }));
    const PAGED = 'sk-ant-api03-paged-cccccccccccccccccc';
    fake.addKey(PAGED, many);
    const before = fake.requests.length;
    const result = await validateClaudeKey(PAGED, 'claude-test-229', { baseURL: fake.baseURL });
    expect(result).toMatchObject({ status: 'valid', modelAvailable: true });
    expect(result.status === 'valid' && result.models).toHaveLength(230);
    expect(fake.requests.slice(before).filter((r) => r.path === '/v1/models')).toHaveLength(3);
  });

  it('valid key lacking the model', async () => {
    expect(await validateClaudeKey(LIMITED, MODEL, { baseURL: fake.baseURL })).toMatchObject({
      status: 'valid',
      modelAvailable: false,
    });
  });

  it('invalid key, without echoing it', async () => {
    const result = await validateClaudeKey('sk-ant-api03-nope-dddddddddd', MODEL, { baseURL: fake.baseURL });
    expect(result).toEqual({ status: 'invalid', reason: 'Anthropic rejected the API key (401)' });
    expect(await validateClaudeKey('  ', MODEL, { baseURL: fake.baseURL })).toMatchObject({
      status: 'invalid',
    });
  });

  it('unreachable: closed port, overloaded', async () => {
    const port = await closedPort();
    expect(await validateClaudeKey(KEY, MODEL, { baseURL: `http://127.0.0.1:${port}` })).toMatchObject({
      status: 'unreachable',
    });
    fake.failNext(1, ANTHROPIC_ERRORS.overloaded(4));
    expect(await validateClaudeKey(KEY, MODEL, { baseURL: fake.baseURL })).toMatchObject({
      status: 'unreachable',
    });
  });
});

describe('fake Anthropic models endpoint', () => {
  it('retrieves one model and 404s an unknown one', async () => {
    await expect(client().models.retrieve(MODEL)).resolves.toMatchObject({ id: MODEL, type: 'model' });
    expect(await failureOf(() => client(LIMITED).models.retrieve(MODEL))).toMatchObject({
      kind: 'model_unavailable',
    });
  });
});

describe('fake Anthropic wire format', () => {
  it('accepts x-api-key too and answers errors in Anthropic’s envelope with a request-id', async () => {
    const ok = await fetch(`${fake.baseURL}/v1/models?limit=2`, {
      headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' },
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({
      has_more: true,
      first_id: DEFAULT_MODELS[0]!.id,
      last_id: DEFAULT_MODELS[1]!.id,
    });

    const bad = await fetch(`${fake.baseURL}/v1/models`, {
      headers: { 'x-api-key': 'nope', 'anthropic-version': '2023-06-01' },
    });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('request-id')).toMatch(/^req_/);
    expect(await bad.json()).toMatchObject({
      type: 'error',
      error: { type: 'authentication_error', message: 'invalid x-api-key' },
    });

    fake.failNext(1, ANTHROPIC_ERRORS.rateLimited(9), KEY);
    const limited = await fetch(`${fake.baseURL}/v1/models`, {
      headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' },
    });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('9');
    expect(await limited.json()).toMatchObject({ error: { type: 'rate_limit_error' } });
  });
});
