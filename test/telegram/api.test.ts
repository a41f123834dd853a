import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTelegramApi } from '../../lib/telegram/api';
import { formatForTelegram } from '../../lib/telegram/chunk';
import { classifyTelegramError, type TelegramErrorKind } from '../../lib/telegram/errors';
import { buildUpdate, type FakeTelegram, startFakeTelegram, TELEGRAM_ERRORS } from '../support/fake-telegram';

const TOKEN = '123456:AAbbCCddEEffGGhhIIjjKKllMMnnOOpp';
const OTHER = '654321:ZZyyXXwwVVuuTTssRRqqPPooNNmmLLkk';

let fake: FakeTelegram;
beforeAll(async () => {
  fake = await startFakeTelegram({ maxPollMs: 1_500 });
  fake.addBot(TOKEN, { id: 123456, first_name: 'Helper', username: 'helper_bot' });
  fake.addBot(OTHER, { id: 654321, first_name: 'Other', username: 'other_bot' });
});
afterAll(() => fake.stop());

const api = (token = TOKEN) => createTelegramApi(token, { apiRoot: fake.apiRoot, timeoutMs: 5_000 });

async function failureOf(call: () => Promise<unknown>): Promise<TelegramErrorKind> {
  try {
    await call();
  } catch (error) {
    return classifyTelegramError(error);
  }
  throw new Error('call succeeded');
}

describe('fake Telegram with the real grammY Api', () => {
  it('answers getMe per token and 401 for an unknown one', async () => {
    expect(await api().getMe()).toMatchObject({ id: 123456, username: 'helper_bot', is_bot: true });
    expect(await api(OTHER).getMe()).toMatchObject({ username: 'other_bot' });
    expect(await failureOf(() => api('1:unknownunknownunknownunknown').getMe())).toEqual({
      kind: 'invalid_token',
    });
  });

  it('records sendMessage with its options and returns increasing message ids', async () => {
    const a = await api().sendMessage(42, '<b>hi</b>', {
      parse_mode: 'HTML',
      reply_parameters: { message_id: 7 },
      link_preview_options: { is_disabled: true },
    });
    const b = await api().sendMessage(42, 'again');
    expect(b.message_id).toBeGreaterThan(a.message_id);
    expect(a.text).toBe('hi');
    expect(a.reply_to_message?.message_id).toBe(7);
    const call = fake.callsOf('sendMessage', TOKEN).at(-2)!;
    expect(call.params).toMatchObject({
      chat_id: 42,
      parse_mode: 'HTML',
      reply_parameters: { message_id: 7 },
      link_preview_options: { is_disabled: true },
    });
  });

  it.each([
    ['<b>open', 'Bad Request: can\'t parse entities: Can\'t find end tag corresponding to start tag "b"'],
    ['<foo>x</foo>', 'Bad Request: can\'t parse entities: Unsupported start tag "foo" at byte offset 0'],
    [
      '<b>x</i>',
      'Bad Request: can\'t parse entities: Unmatched end tag at byte offset 4, expected "</b>", found "</i>"',
    ],
  ])(
    'rejects bad entities %j like Telegram, and the plain-text fallback is accepted',
    async (html, description) => {
      const error = await api()
        .sendMessage(1, html, { parse_mode: 'HTML' })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ error_code: 400, description });
      expect(classifyTelegramError(error)).toEqual({ kind: 'bad_entities', description });
      await expect(api().sendMessage(1, html)).resolves.toMatchObject({ text: html });
    },
  );

  it('sends every formatted chunk of a long answer, and rejects one message over 4096', async () => {
    const long = `${'word '.repeat(700)}\n\n${'more '.repeat(700)}`;
    const chunks = formatForTelegram(long);
    expect(chunks).toHaveLength(2);
    for (const c of chunks) await api().sendMessage(5, c.html, { parse_mode: 'HTML' });
    const error = await api()
      .sendMessage(5, 'x'.repeat(4097))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ error_code: 400, description: 'Bad Request: message is too long' });
    expect(classifyTelegramError(error).kind).toBe('fatal');
  });

  it('classifies each scripted error', async () => {
    fake.failNext('sendMessage', 1, TELEGRAM_ERRORS.tooManyRequests(7), TOKEN);
    expect(await failureOf(() => api().sendMessage(1, 'x'))).toEqual({ kind: 'retry_after', seconds: 7 });
    fake.failNext('sendMessage', 1, TELEGRAM_ERRORS.blocked());
    expect(await failureOf(() => api().sendMessage(1, 'x'))).toMatchObject({ kind: 'blocked' });
    fake.failNext('sendMessage', 1, TELEGRAM_ERRORS.kicked());
    expect(await failureOf(() => api().sendMessage(1, 'x'))).toMatchObject({ kind: 'blocked' });
    fake.failNext('sendMessage', 1, TELEGRAM_ERRORS.internal());
    expect(await failureOf(() => api().sendMessage(1, 'x'))).toMatchObject({ kind: 'retryable' });
    fake.failNext('getMe', 1, { error_code: 404, description: 'Not Found' });
    expect(await failureOf(() => api().getMe())).toEqual({ kind: 'invalid_token' });
    // Scripted failures are consumed: the next call works.
    await expect(api().sendMessage(1, 'x')).resolves.toMatchObject({ text: 'x' });
  });

  it('classifies a 502 page and dropped connections as retryable', async () => {
    fake.setDown('502');
    try {
      expect((await failureOf(() => api().getMe())).kind).toBe('retryable');
      fake.setDown('reset');
      expect((await failureOf(() => api().getMe())).kind).toBe('retryable');
    } finally {
      fake.setDown(false);
    }
    await expect(api().getMe()).resolves.toMatchObject({ username: 'helper_bot' });
  });

  it('classifies a request timeout as retryable', async () => {
    fake.setDelay('getMe', 1_500);
    try {
      const slow = createTelegramApi(TOKEN, { apiRoot: fake.apiRoot, timeoutMs: 1_000 });
      expect((await failureOf(() => slow.getMe())).kind).toBe('retryable');
    } finally {
      fake.setDelay('getMe', 0);
    }
  });

  it('validates sendChatAction actions', async () => {
    await expect(api().sendChatAction(1, 'typing')).resolves.toBe(true);
    const err = await api()
      // @ts-expect-error: an action Telegram does not know
      .sendChatAction(1, 'dancing')
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ error_code: 400 });
  });
});

describe('fake Telegram wire format', () => {
  it('accepts form-encoded and query parameters, and rejects unparseable JSON like Telegram', async () => {
    const form = await fetch(`${fake.apiRoot}/bot${TOKEN}/sendMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ chat_id: '77', text: 'a &amp; b', parse_mode: 'HTML' }),
    });
    expect(await form.json()).toMatchObject({ ok: true, result: { chat: { id: 77 }, text: 'a & b' } });
    const query = await fetch(`${fake.apiRoot}/bot${TOKEN}/sendChatAction?chat_id=77&action=typing`);
    expect(await query.json()).toEqual({ ok: true, result: true });
    const broken = await fetch(`${fake.apiRoot}/bot${TOKEN}/sendMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{not json',
    });
    expect(broken.status).toBe(400);
    expect(await broken.json()).toMatchObject({ ok: false, error_code: 400 });
  });
});

describe('webhooks', () => {
  let receiver: Server;
  let url: string;
  const received: Array<{ secret: string | undefined; body: unknown }> = [];
  let answer = 200;
  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        received.push({
          secret: req.headers['x-telegram-bot-api-secret-token'] as string | undefined,
          body: JSON.parse(body),
        });
        res.writeHead(answer).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/telegram/agent-1`;
  });
  afterAll(() => new Promise<void>((r) => receiver.close(() => r())));

  it('registers, reports and deletes a webhook; delivers with the secret header', async () => {
    await api(OTHER).setWebhook(url, {
      secret_token: 'sec_ret-1',
      allowed_updates: ['message', 'edited_message'],
    });
    expect(await api(OTHER).getWebhookInfo()).toMatchObject({
      url,
      pending_update_count: 0,
      allowed_updates: ['message', 'edited_message'],
    });
    const update = buildUpdate.privateText({ from: { id: 9 }, text: 'hello' });
    expect(await fake.deliverUpdate(OTHER, update)).toBe(200);
    expect(received.at(-1)).toEqual({ secret: 'sec_ret-1', body: update });

    answer = 500;
    expect(await fake.deliverUpdate(OTHER, buildUpdate.privateText({ from: { id: 9 }, text: 'x' }))).toBe(
      500,
    );
    answer = 200;
    const info = await api(OTHER).getWebhookInfo();
    expect(info.pending_update_count).toBe(1);
    expect(info.last_error_message).toMatch(/Wrong response from the webhook: 500/);
    expect(info.last_error_date).toBeGreaterThan(0);

    // getUpdates is refused while a webhook is set.
    const conflict = await api(OTHER)
      .getUpdates()
      .catch((e: unknown) => e);
    expect(conflict).toMatchObject({ error_code: 409 });

    await api(OTHER).deleteWebhook({ drop_pending_updates: true });
    expect(await api(OTHER).getWebhookInfo()).toMatchObject({ url: '', pending_update_count: 0 });
  });

  it('rejects a secret token with characters Telegram does not allow', async () => {
    const err = await api(OTHER)
      .setWebhook(url, { secret_token: 'not allowed!' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      error_code: 400,
      description: 'Bad Request: secret token contains unallowed characters',
    });
  });
});

describe('long polling', () => {
  it('waits for queued updates and confirms them with offset', async () => {
    const first = buildUpdate.privateText({ from: { id: 3 }, text: 'one' });
    const second = buildUpdate.privateText({ from: { id: 3 }, text: 'two' });
    const poll = api(OTHER).getUpdates({ timeout: 10 });
    setTimeout(() => fake.queueUpdate(OTHER, first, second), 50);
    const got = await poll;
    expect(got.map((u) => u.update_id)).toEqual([first.update_id, second.update_id]);
    // Without confirmation they come again; with offset they are gone and the poll times out (bounded).
    expect(await api(OTHER).getUpdates({ timeout: 0 })).toHaveLength(2);
    expect(await api(OTHER).getUpdates({ offset: second.update_id + 1, timeout: 1 })).toEqual([]);
  });
});
