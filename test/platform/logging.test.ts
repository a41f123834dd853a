import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../api/app';
import type { Services } from '../../lib/services';
import { createTelegramApi } from '../../lib/telegram/api';
import { createTestDatabase, type TestDatabase } from '../support/db';
import { startFakeTelegram, TELEGRAM_ERRORS } from '../support/fake-telegram';
import { closedPort } from '../support/loopback';
import { captureLogger, createTestServices } from '../support/services';

describe('structured logging', () => {
  let database: TestDatabase;
  let services: Services;
  const capture = captureLogger('debug');

  beforeAll(async () => {
    database = await createTestDatabase('pglite');
    services = await createTestServices({ database: database.handle, logger: capture.logger });
  });
  afterAll(async () => {
    await services.close();
    await database.destroy();
  });

  it('writes JSON lines carrying the request id of the request', async () => {
    const res = await createApp(services).request('/no-such-route', {
      headers: { 'X-Request-Id': 'req-abc-123' },
    });
    expect(res.status).toBe(404);
    expect(res.headers.get('x-request-id')).toBe('req-abc-123');
    const line = capture.lines.find((entry) => entry.msg === 'request' && entry.path === '/no-such-route');
    expect(line).toMatchObject({ requestId: 'req-abc-123', method: 'GET', status: 404, level: 'warn' });
    expect(typeof line?.time).toBe('string');
  });

  it('redacts secrets wherever they sit in a logged object', () => {
    capture.logger.info(
      {
        token: '123456:AAAA-telegram-token',
        credentials: { apiKey: 'sk-ant-secret', nested: { secret: 'webhook-secret' } },
        headers: { authorization: 'Bearer oc_live', 'x-telegram-bot-api-secret-token': 'tg-secret' },
        safe: 'visible',
      },
      'with secrets',
    );
    const line = capture.lines.find((entry) => entry.msg === 'with secrets');
    const text = JSON.stringify(line);
    for (const secret of ['AAAA-telegram-token', 'sk-ant-secret', 'webhook-secret', 'oc_live', 'tg-secret']) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain('visible');
  });

  it("redacts a secret's key at any depth, and in any letter case", () => {
    capture.logger.warn(
      {
        err: { config: { headers: { Authorization: 'Bearer deep-key-1', 'X-Api-Key': 'deep-key-2' } } },
        a: { b: { c: { d: { password: 'deep "quoted\\" key-3', secretToken: 'deep-key-4' } } } },
        list: [{ x: { y: { apiKey: 'deep-key-5' } } }],
        safe: { tokenCount: 12, secretary: 'visible-too' },
      },
      'deep secrets',
    );
    const text = JSON.stringify(capture.lines.find((entry) => entry.msg === 'deep secrets'));
    for (const secret of ['deep-key-1', 'deep-key-2', 'key-3', 'deep-key-4', 'deep-key-5']) {
      expect(text, secret).not.toContain(secret);
    }
    expect(text).toContain('visible-too');
    expect(text).toContain('"tokenCount":12');
  });

  it('keeps a bot token out of a failed Bot API call and its parameters out of a refused one', async () => {
    const token = '7001234567:AAHsecretsecretsecretsecretsecret12';
    const down = createTelegramApi(token, { apiRoot: `http://127.0.0.1:${await closedPort()}` });
    // grammY's HttpError holds node-fetch's error, whose message and stack carry the URL with the token.
    const unreachable = await down.getMe().catch((error: unknown) => error);
    expect(JSON.stringify((unreachable as { error?: { message?: string } }).error?.message)).toContain(token);
    capture.logger.error({ err: unreachable }, 'telegram unreachable');

    const telegram = await startFakeTelegram();
    try {
      telegram.addBot(token, { id: 7001234567, first_name: 'Bot', username: 'secret_bot' });
      telegram.failNext('setWebhook', 1, TELEGRAM_ERRORS.internal());
      const api = createTelegramApi(token, { apiRoot: telegram.apiRoot });
      const refused = await api
        .setWebhook('https://bots.example.test/telegram/a', { secret_token: 'webhook-secret-0123456789' })
        .catch((error: unknown) => error);
      capture.logger.error({ err: refused }, 'telegram refused');
    } finally {
      await telegram.stop();
    }
    const lines = capture.lines.filter((entry) => String(entry.msg).startsWith('telegram '));
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      const text = JSON.stringify(line);
      expect(text).not.toContain(token);
      expect(text).not.toContain('AAHsecret');
      expect(text).not.toContain('webhook-secret-0123456789');
    }
    expect(JSON.stringify(lines[0])).toContain('[redacted]/getMe');
    expect(lines[1]).toMatchObject({ err: { type: 'GrammyError', method: 'setWebhook' } });
    // The call's parameters (a user's message text, a webhook secret) are not written at all.
    expect(lines[1]?.err).not.toHaveProperty('payload');
  });

  it('never shows a stack or internal message in a 500', async () => {
    const app = createApp(services, {
      extend: (root) =>
        root.get('/boom', () => {
          throw new Error('database password is hunter2');
        }),
    });
    const res = await app.request('/boom');
    expect(res.status).toBe(500);
    const body = (await res.json()) as { error: { requestId: string } };
    expect(body).toEqual({
      error: { code: 'internal_error', message: 'An internal error occurred', requestId: expect.any(String) },
    });
    // The handler's own line carries the request id too, as the request line does.
    const logged = capture.lines.filter((entry) => entry.requestId === body.error.requestId);
    expect(logged.map((entry) => entry.msg)).toEqual(['unhandled error', 'request']);
  });
});
