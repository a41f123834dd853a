import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTelegramApi } from '../../lib/telegram/api';
import { withTyping } from '../../lib/telegram/typing';
import { type FakeTelegram, startFakeTelegram, TELEGRAM_ERRORS } from '../support/fake-telegram';

const TOKEN = '222:typingtypingtypingtypingtyping';
let fake: FakeTelegram;
beforeAll(async () => {
  fake = await startFakeTelegram();
  fake.addBot(TOKEN, { id: 222, first_name: 'T', username: 'typing_bot' });
});
afterAll(() => fake.stop());

const api = () => createTelegramApi(TOKEN, { apiRoot: fake.apiRoot });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('withTyping', () => {
  it('re-sends typing until the work settles, then stops', async () => {
    const typed = () => fake.callsOf('sendChatAction').filter((c) => c.params.chat_id === 10).length;
    // The work ends once three actions were seen (bounded wait), so the test does not race the clock.
    const work = (async () => {
      for (let i = 0; i < 200 && typed() < 3; i++) await sleep(20);
      return 'done';
    })();
    const result = await withTyping(api(), 10, work, { intervalMs: 30 });
    expect(result).toBe('done');
    expect(typed()).toBeGreaterThanOrEqual(3);
    await sleep(60); // let a request already on the wire land
    const count = typed();
    await sleep(150);
    expect(typed()).toBe(count);
    expect(fake.callsOf('sendChatAction')[0]!.params).toMatchObject({ action: 'typing' });
  });

  it('passes the work failure through and stops', async () => {
    await expect(
      withTyping(
        api(),
        11,
        sleep(60).then(() => Promise.reject(new Error('boom'))),
        { intervalMs: 20 },
      ),
    ).rejects.toThrow('boom');
    await sleep(40);
    const count = fake.callsOf('sendChatAction').filter((c) => c.params.chat_id === 11).length;
    await sleep(100);
    expect(fake.callsOf('sendChatAction').filter((c) => c.params.chat_id === 11).length).toBe(count);
  });

  it('stops after a failed chat action without failing the work', async () => {
    fake.failNext('sendChatAction', 1, TELEGRAM_ERRORS.blocked());
    await expect(
      withTyping(
        api(),
        12,
        sleep(200).then(() => 1),
        { intervalMs: 20 },
      ),
    ).resolves.toBe(1);
    expect(fake.callsOf('sendChatAction').filter((c) => c.params.chat_id === 12)).toHaveLength(1);
  });

  it('follows a group upgraded to a supergroup to its new chat id, once', async () => {
    fake.migrateChat(-14, -10014);
    const typedIn = (chatId: number) =>
      fake.callsOf('sendChatAction').filter((c) => c.params.chat_id === chatId).length;
    const work = (async () => {
      for (let i = 0; i < 200 && typedIn(-10014) < 2; i++) await sleep(20);
      return 'done';
    })();
    await expect(withTyping(api(), -14, work, { intervalMs: 30 })).resolves.toBe('done');
    expect(typedIn(-14)).toBe(1);
    expect(typedIn(-10014)).toBeGreaterThanOrEqual(2);
  });

  it('does not follow a second move', async () => {
    fake.migrateChat(-15, -10015);
    fake.migrateChat(-10015, -20015);
    await withTyping(api(), -15, sleep(150), { intervalMs: 20 });
    const typedIn = (chatId: number) =>
      fake.callsOf('sendChatAction').filter((c) => c.params.chat_id === chatId).length;
    expect([typedIn(-15), typedIn(-10015), typedIn(-20015)]).toEqual([1, 1, 0]);
  });

  it('drops a thread Telegram does not know, once, and keeps typing in the chat', async () => {
    const calls = () => fake.callsOf('sendChatAction').filter((c) => c.params.chat_id === -10016);
    fake.failNext('sendChatAction', 1, {
      error_code: 400,
      description: 'Bad Request: message thread not found',
    });
    const work = (async () => {
      for (let i = 0; i < 200 && calls().length < 3; i++) await sleep(20);
      return 'done';
    })();
    await expect(withTyping(api(), -10016, work, { intervalMs: 30, messageThreadId: 1 })).resolves.toBe(
      'done',
    );
    const threads = calls().map((c) => c.params.message_thread_id);
    expect(threads[0]).toBe(1);
    expect(threads.length).toBeGreaterThanOrEqual(3);
    expect(new Set(threads.slice(1))).toEqual(new Set([undefined]));
  });

  it('is bounded by maxMs', async () => {
    await withTyping(api(), 13, sleep(300), { intervalMs: 20, maxMs: 60 });
    expect(fake.callsOf('sendChatAction').filter((c) => c.params.chat_id === 13).length).toBeLessThanOrEqual(
      4,
    );
  });
});
