import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../api/app';
import { createFunctions } from '../../functions/index';
import { readCredentialSecret } from '../../lib/credentials';
import { telegramMessages } from '../../lib/db/schema';
import type { JobEvent } from '../../lib/jobs';
import { MAX_JSON_DEPTH } from '../../lib/json-faults';
import { createRunningAgent } from '../support/agents';
import { databaseTargets } from '../support/db';
import { createExecutorHarness, type ExecutorHarness } from '../support/executor';
import { buildUpdate, type FakeTelegram, startFakeTelegram } from '../support/fake-telegram';
import { captureLogger } from '../support/services';

/** An update's JSON with `extra` (raw JSON text) added as a field no Telegram update has. */
const withField = (update: Record<string, unknown>, extra: string) =>
  `${JSON.stringify(update).slice(0, -1)},"zzz":${extra}}`;
const nestedArrays = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

/*
 * One statement stores a batch of webhook calls, before their secrets are judged: an update
 * PostgreSQL (or JSON.stringify) cannot take must never reach it, or every call in the batch,
 * the sender's and other agents' alike, fails with a 500.
 */
describe.each(databaseTargets())('Telegram ingress input on %s', (target) => {
  let telegram: FakeTelegram;
  let harness: ExecutorHarness;

  beforeAll(async () => {
    telegram = await startFakeTelegram({ maxPollMs: 500 });
    harness = await createExecutorHarness({
      target,
      functions: (inngest, services) => createFunctions({ inngest, services }),
      env: { TELEGRAM_API_ROOT: telegram.apiRoot, TELEGRAM_WEBHOOK_BASE_URL: 'https://bots.example.com' },
    });
  });
  afterAll(async () => {
    await harness.close();
    await telegram.stop();
  });

  async function setUp() {
    const agent = await createRunningAgent(harness, telegram, undefined);
    const { db, keyring } = harness.services;
    const secret = (await readCredentialSecret(db, keyring, agent.agentId, 'telegram_webhook')) as string;
    const { logger, lines } = captureLogger('warn');
    const events: JobEvent[] = [];
    const app = createApp(
      { ...harness.services, logger },
      {
        sendEvent: async (batch) => {
          events.push(...batch);
          await harness.inngest.send(batch);
        },
      },
    );
    const post = (body: string, token = secret, agentId = agent.agentId) =>
      app.request(`/telegram/${agentId}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': token },
        body,
      });
    const stored = async () =>
      (await db.select().from(telegramMessages).where(eq(telegramMessages.agentId, agent.agentId))).map(
        (row) => row.text,
      );
    return { agent, post, stored, lines, events };
  }

  it('a NUL is acknowledged (200) and logged as malformed, not a 500 Telegram would redeliver forever', async () => {
    const { agent, post, stored, lines } = await setUp();
    const bad = JSON.stringify(
      buildUpdate.privateText({ from: { id: 42, first_name: 'Ann' }, text: 'he\u0000llo' }),
    );
    expect((await post(bad, 'wrong-secret')).status).toBe(401);
    expect((await post(bad)).status).toBe(200);
    expect(lines.find((line) => line.msg === 'malformed Telegram update acknowledged')).toMatchObject({
      agentId: agent.agentId,
      issues: [
        { path: ['message', 'text'], message: 'the update must not contain the NUL character (U+0000)' },
      ],
    });
    expect(await stored()).toEqual([]);
    // The next update of the chat is stored as usual.
    const good = JSON.stringify(
      buildUpdate.privateText({ from: { id: 42, first_name: 'Ann' }, text: 'hello' }),
    );
    expect((await post(good)).status).toBe(200);
    expect(await stored()).toEqual(['hello']);
  });

  it('nesting thousands of levels deep is a 401 without the secret and acknowledged (200) with it, never a 500', async () => {
    const { agent, post, stored, lines } = await setUp();
    const update = buildUpdate.privateText({ from: { id: 42, first_name: 'Ann' }, text: 'deep' });
    const deep = withField(update, nestedArrays(20_000));
    expect((await post(deep, 'wrong-secret')).status).toBe(401);
    expect((await post(deep, 'wrong-secret', '00000000-0000-4000-8000-000000000000')).status).toBe(401);
    expect((await post(deep)).status).toBe(200);
    expect(lines.find((line) => line.msg === 'malformed Telegram update acknowledged')).toMatchObject({
      agentId: agent.agentId,
      issues: [
        { message: `the update must not nest objects and arrays more than ${MAX_JSON_DEPTH} levels deep` },
      ],
    });
    expect(lines.filter((line) => Number(line.level) >= 50)).toEqual([]);
    expect(await stored()).toEqual([]);
  });

  it('a lone surrogate is a 401 without the secret; with it, the message is stored with U+FFFD in its place', async () => {
    const { post, stored, lines } = await setUp();
    const update = buildUpdate.privateText({ from: { id: 43, first_name: 'Bo' }, text: 'hi \ud800 there' });
    const body = withField(update, '"\\udfff"');
    expect((await post(body, 'wrong-secret')).status).toBe(401);
    expect((await post(body)).status).toBe(200);
    expect(await stored()).toEqual(['hi \ufffd there']);
    expect(lines.filter((line) => Number(line.level) >= 50)).toEqual([]);
  });

  it('a caller without the secret cannot fail the calls batched with its own', async () => {
    const { post, stored } = await setUp();
    const goods = Array.from({ length: 8 }, (_, index) =>
      buildUpdate.privateText({ from: { id: 100 + index, first_name: 'U' }, text: `good ${index}` }),
    );
    const poison = withField(
      buildUpdate.privateText({ from: { id: 99, first_name: 'X' }, text: 'x' }),
      '"\\ud800"',
    );
    const deepPoison = withField(
      buildUpdate.privateText({ from: { id: 98, first_name: 'Y' }, text: 'y' }),
      nestedArrays(9_000),
    );
    const statuses = await Promise.all([
      post(poison, 'wrong-secret'),
      post(deepPoison, 'wrong-secret'),
      ...goods.map((good) => post(JSON.stringify(good))),
    ]).then((responses) => responses.map((res) => res.status));
    expect(statuses).toEqual([401, 401, ...goods.map(() => 200)]);
    expect((await stored()).sort()).toEqual(goods.map((_, index) => `good ${index}`).sort());
  });

  it('a webhook URL with the agent id in capitals (as one registered before ids were lower-cased) keys the event as stored', async () => {
    const { agent, post, stored, events } = await setUp();
    const update = buildUpdate.privateText({ from: { id: 44, first_name: 'Cy' }, text: 'caps' });
    expect((await post(JSON.stringify(update), undefined, agent.agentId.toUpperCase())).status).toBe(200);
    expect(await stored()).toEqual(['caps']);
    expect(events).toHaveLength(1);
    expect(JSON.stringify(events[0])).not.toContain(agent.agentId.toUpperCase());
    expect(events[0]).toMatchObject({
      id: `${agent.agentId}:${update.update_id}`,
      data: { agentId: agent.agentId, chatKey: `${agent.agentId}:44` },
    });
  });
});
