import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateTelegramToken } from '../../lib/telegram/validate';
import { type FakeTelegram, startFakeTelegram, TELEGRAM_ERRORS } from '../support/fake-telegram';
import { closedPort } from '../support/loopback';

const TOKEN = '9001:validvalidvalidvalidvalidvalid';
let fake: FakeTelegram;
beforeAll(async () => {
  fake = await startFakeTelegram();
  fake.addBot(TOKEN, { id: 9001, first_name: 'V', username: 'Valid_Bot' });
});
afterAll(() => fake.stop());

describe('validateTelegramToken', () => {
  it('accepts a known token and compares the username case-insensitively', async () => {
    const opts = { apiRoot: fake.apiRoot };
    expect(await validateTelegramToken(TOKEN, '@valid_bot', opts)).toEqual({
      status: 'valid',
      botId: 9001,
      username: 'Valid_Bot',
      usernameMatches: true,
    });
    expect(await validateTelegramToken(TOKEN, 'someone_else_bot', opts)).toMatchObject({
      usernameMatches: false,
    });
    expect(await validateTelegramToken(TOKEN, undefined, opts)).toMatchObject({ usernameMatches: true });
  });

  it('rejects an unknown token without echoing it', async () => {
    const token = '9002:unknownunknownunknownunknown';
    const result = await validateTelegramToken(token, undefined, { apiRoot: fake.apiRoot });
    expect(result.status).toBe('invalid');
    expect(JSON.stringify(result)).not.toContain('unknownunknown');
  });

  it('rejects a malformed token without calling Telegram', async () => {
    const before = fake.calls.length;
    expect(await validateTelegramToken('not-a-token', undefined, { apiRoot: fake.apiRoot })).toMatchObject({
      status: 'invalid',
    });
    expect(fake.calls.length).toBe(before);
  });

  it('reports unreachable for a closed port, a 5xx and a 429', async () => {
    const port = await closedPort();
    expect(
      await validateTelegramToken(TOKEN, undefined, { apiRoot: `http://127.0.0.1:${port}` }),
    ).toMatchObject({
      status: 'unreachable',
    });
    fake.failNext('getMe', 1, TELEGRAM_ERRORS.internal());
    expect(await validateTelegramToken(TOKEN, undefined, { apiRoot: fake.apiRoot })).toMatchObject({
      status: 'unreachable',
    });
    fake.failNext('getMe', 1, TELEGRAM_ERRORS.tooManyRequests(3));
    expect(await validateTelegramToken(TOKEN, undefined, { apiRoot: fake.apiRoot })).toMatchObject({
      status: 'unreachable',
    });
  });

  it('times out against a server that never answers', async () => {
    fake.setDelay('getMe', 2_500);
    try {
      expect(
        await validateTelegramToken(TOKEN, undefined, { apiRoot: fake.apiRoot, timeoutMs: 1_000 }),
      ).toMatchObject({ status: 'unreachable' });
    } finally {
      fake.setDelay('getMe', 0);
    }
  });
});
