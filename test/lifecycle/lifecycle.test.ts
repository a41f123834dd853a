import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../api/app';
import { createFunctions } from '../../functions/index';
import { readCredentialSecret } from '../../lib/credentials';
import { createTelegramApi } from '../../lib/telegram/api';
import { apiRequest } from '../support/api-request';
import { databaseTargets } from '../support/db';
import { createExecutorHarness, type ExecutorHarness } from '../support/executor';
import { type FakeAnthropic, startFakeAnthropic } from '../support/fake-anthropic';
import { type FakeTelegram, startFakeTelegram, TELEGRAM_ERRORS } from '../support/fake-telegram';
import { TEST_ADMIN_KEY } from '../support/services';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';

const WEBHOOK_BASE = 'https://bots.example.com';
let botCounter = 0;

describe.each(databaseTargets())('agent lifecycle on %s', (target) => {
  let harness: ExecutorHarness;
  let app: App;
  let telegram: FakeTelegram;
  let anthropic: FakeAnthropic;
  let receiver: WebhookReceiver;
  /** Runs before the app sends events: a test holds a request there to let another one in between. */
  let beforeSend: ((events: { data?: unknown }[]) => Promise<void>) | undefined;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    telegram = await startFakeTelegram();
    anthropic = await startFakeAnthropic();
    harness = await createExecutorHarness({
      target,
      functions: (inngest, services) => createFunctions({ inngest, services }),
      env: {
        TELEGRAM_API_ROOT: telegram.apiRoot,
        ANTHROPIC_BASE_URL: anthropic.baseURL,
        TELEGRAM_WEBHOOK_BASE_URL: WEBHOOK_BASE,
      },
    });
    app = createApp(harness.services, {
      sendEvent: async (events) => {
        await beforeSend?.(events);
        await harness.inngest.send(events);
      },
    });
  });
  afterAll(async () => {
    await harness.close();
    await telegram.stop();
    await anthropic.stop();
    await receiver.close();
  });

  const call = (method: string, path: string, key: string, body?: unknown) =>
    apiRequest(app, method, path, { key, body });

  /** Runs the engine while a request that waits for a function is in flight. */
  async function whileDraining(request: Promise<Response>): Promise<Response> {
    let settled = false;
    request.then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    for (let round = 0; round < 500 && !settled; round += 1) {
      await harness.drain();
      await sleep(10);
    }
    return request;
  }

  async function setup(
    options: { botUsername?: string; telegramValid?: boolean; claudeValid?: boolean } = {},
  ) {
    botCounter += 1;
    const botId = 700000 + botCounter;
    const token = `${botId}:AAE${'x'.repeat(30)}${String(botCounter).padStart(4, '0')}`;
    const apiKeyForClaude = `sk-ant-api03-test-${'k'.repeat(20)}-${botCounter}`;
    if (options.telegramValid !== false)
      telegram.addBot(token, { id: botId, first_name: 'Bot', username: `lifecycle_${botCounter}_bot` });
    if (options.claudeValid !== false) anthropic.addKey(apiKeyForClaude);
    const created = (await (
      await call('POST', '/api/v1/admin/customers', TEST_ADMIN_KEY, { name: 'Lifecycle', plan: 'pro' })
    ).json()) as { customer: { id: string }; apiKey: string; webhookSecret: string };
    // Each customer's webhook deliveries arrive on a path of its own.
    const webhookPath = `/customer-${botCounter}`;
    await call('PUT', '/api/v1/webhook', created.apiKey, { url: `${receiver.url}${webhookPath}` });
    const agent = (await (
      await call('POST', '/api/v1/agents', created.apiKey, {
        name: 'Lifecycle bot',
        ...(options.botUsername ? { botUsername: options.botUsername } : {}),
      })
    ).json()) as { agent: { id: string } };
    const agentId = agent.agent.id;
    await call('PUT', `/api/v1/agents/${agentId}/credentials/telegram`, created.apiKey, { botToken: token });
    await call('PUT', `/api/v1/agents/${agentId}/credentials/claude`, created.apiKey, {
      apiKey: apiKeyForClaude,
    });
    return {
      key: created.apiKey,
      customerId: created.customer.id,
      agentId,
      token,
      claudeKey: apiKeyForClaude,
      botUsername: `lifecycle_${botCounter}_bot`,
      /** The customer's webhook events as its endpoint received them, each checked against its secret. */
      delivered: () =>
        receiver.requests
          .filter((request) => request.path === `${new URL(receiver.url).pathname}${webhookPath}`)
          .map((request) => ({
            ...(JSON.parse(request.body) as { type: string; agentId: string }),
            verifies: request.standardVerifies(created.webhookSecret),
          })),
    };
  }

  const validate = (key: string, agentId: string) =>
    whileDraining(Promise.resolve(call('POST', `/api/v1/agents/${agentId}/credentials/validate`, key)));

  it('validates both credentials with the providers and stores the results', async () => {
    const agent = await setup();
    const before = (await (
      await call('GET', `/api/v1/agents/${agent.agentId}/credentials`, agent.key)
    ).json()) as {
      credentials: Record<string, { updatedAt: string }>;
    };
    const setAt = {
      telegram: before.credentials.telegram?.updatedAt,
      claude: before.credentials.claude?.updatedAt,
    };
    const res = await validate(agent.key, agent.agentId);
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      credentials: Record<string, { valid: boolean; validatedAt: string; updatedAt: string }>;
    };
    expect(body.credentials.telegram).toMatchObject({ valid: true, validatedAt: expect.any(String) });
    expect(body.credentials.claude).toMatchObject({ valid: true });
    // The check is not a change of the secret: updatedAt still says when it was set.
    for (const kind of ['telegram', 'claude'] as const) {
      expect(body.credentials[kind]?.updatedAt).toBe(setAt[kind]);
      expect(Date.parse(body.credentials[kind]?.validatedAt ?? '')).toBeGreaterThan(
        Date.parse(setAt[kind] ?? ''),
      );
    }
    expect(telegram.callsOf('getMe', agent.token)).toHaveLength(1);
    const status = (await (await call('GET', `/api/v1/agents/${agent.agentId}`, agent.key)).json()) as {
      agent: { telegramBotUsername: string };
    };
    expect(status.agent.telegramBotUsername).toBe(agent.botUsername);
  });

  it('reports invalid credentials with the provider reason, never the secret', async () => {
    const agent = await setup({ telegramValid: false, claudeValid: false });
    const res = await validate(agent.key, agent.agentId);
    const text = await res.text();
    expect(text).not.toContain(agent.token);
    const body = JSON.parse(text) as {
      credentials: Record<string, { valid: boolean; validation: { status: string; reason: string } }>;
    };
    expect(body.credentials.telegram).toMatchObject({ valid: false, validation: { status: 'invalid' } });
    expect(body.credentials.claude).toMatchObject({ valid: false, validation: { status: 'invalid' } });
  });

  it('reports a bot username that does not match, and a model the key cannot use', async () => {
    const agent = await setup({ botUsername: 'some_other_bot' });
    await call('PATCH', `/api/v1/agents/${agent.agentId}`, agent.key, { model: 'claude-haiku-5-5' });
    anthropic.addKey(`sk-ant-api03-limited-${'q'.repeat(24)}`, [
      { id: 'claude-opus-5-5', display_name: 'Opus', created_at: '2026-09-01T00:00:00Z' },
    ]);
    await call('PUT', `/api/v1/agents/${agent.agentId}/credentials/claude`, agent.key, {
      apiKey: `sk-ant-api03-limited-${'q'.repeat(24)}`,
    });
    const body = (await (await validate(agent.key, agent.agentId)).json()) as {
      credentials: Record<string, { validation: { status: string; reason: string } }>;
    };
    expect(body.credentials.telegram?.validation).toMatchObject({
      status: 'invalid',
      reason: expect.stringMatching(/^bot_username_mismatch/),
    });
    expect(body.credentials.claude?.validation).toMatchObject({
      status: 'invalid',
      reason: expect.stringMatching(/^model_unavailable/),
    });
  });

  it('reports a provider that is down as unreachable', async () => {
    const agent = await setup();
    telegram.setDown('reset');
    anthropic.setDown(true);
    try {
      const body = (await (await validate(agent.key, agent.agentId)).json()) as {
        credentials: Record<string, { valid: boolean | null; validation: { status: string } }>;
      };
      // Neither valid nor invalid: nobody answered the check.
      expect(body.credentials.telegram).toMatchObject({ valid: null, validation: { status: 'unreachable' } });
      expect(body.credentials.claude).toMatchObject({ valid: null, validation: { status: 'unreachable' } });
    } finally {
      telegram.setDown(false);
      anthropic.setDown(false);
    }
  });

  it('refuses to start before both credentials are valid', async () => {
    const agent = await setup();
    const res = await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key);
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({
      error: {
        code: 'agent_not_ready',
        details: { credentials: { telegram: 'not validated', claude: 'not validated' } },
      },
    });
  });

  it('starts once under concurrent calls: one webhook with a secret token, status running, agent.started', async () => {
    const agent = await setup();
    await validate(agent.key, agent.agentId);
    const [first, second] = await Promise.all([
      call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key),
      call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key),
    ]);
    expect([first.status, second.status]).toEqual([202, 202]);
    await harness.settle();
    expect(telegram.callsOf('setWebhook', agent.token)).toHaveLength(1);
    const hook = telegram.webhookOf(agent.token);
    expect(hook?.url).toBe(`${WEBHOOK_BASE}/telegram/${agent.agentId}`);
    const secret = await readCredentialSecret(
      harness.services.db,
      harness.services.keyring,
      agent.agentId,
      'telegram_webhook',
    );
    expect(hook?.secretToken).toBe(secret);
    expect(hook?.allowedUpdates).toEqual(['message', 'edited_message']);
    const status = (await (
      await call('GET', `/api/v1/agents/${agent.agentId}/status`, agent.key)
    ).json()) as {
      status: { status: string; telegram: { delivery: string; webhook: { url: string } } };
    };
    expect(status.status).toMatchObject({
      status: 'running',
      telegram: { delivery: 'webhook', webhook: { url: hook?.url } },
    });
    const again = await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key);
    expect(again.status).toBe(202);
    await harness.settle();
    expect(telegram.callsOf('setWebhook', agent.token)).toHaveLength(1);
    const events = await harness.runsOf('openclaw-platform-deliver-webhook');
    const emitted = events.map((run) => run.event.data as { type?: string; agentId?: string });
    expect(emitted).toContainEqual(
      expect.objectContaining({ type: 'agent.started', agentId: agent.agentId }),
    );
    // And the customer's endpoint got it, once, signed.
    expect(agent.delivered()).toEqual([
      expect.objectContaining({ type: 'agent.started', agentId: agent.agentId, verifies: true }),
    ]);
  });

  it('stops: deleteWebhook, status stopped, agent.stopped; stopping again changes nothing', async () => {
    const agent = await setup();
    await validate(agent.key, agent.agentId);
    await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key);
    await harness.settle();
    const res = await call('POST', `/api/v1/agents/${agent.agentId}/stop`, agent.key);
    expect(res.status).toBe(202);
    await harness.settle();
    expect(telegram.callsOf('deleteWebhook', agent.token).length).toBeGreaterThanOrEqual(1);
    expect(telegram.webhookOf(agent.token)).toBeUndefined();
    const status = (await (
      await call('GET', `/api/v1/agents/${agent.agentId}/status`, agent.key)
    ).json()) as {
      status: { status: string };
    };
    expect(status.status.status).toBe('stopped');
    const deletes = telegram.callsOf('deleteWebhook', agent.token).length;
    await call('POST', `/api/v1/agents/${agent.agentId}/stop`, agent.key);
    await harness.settle();
    expect(telegram.callsOf('deleteWebhook', agent.token)).toHaveLength(deletes);
    expect(agent.delivered().map(({ type, verifies }) => ({ type, verifies }))).toEqual([
      { type: 'agent.started', verifies: true },
      { type: 'agent.stopped', verifies: true },
    ]);
  });

  it("the status reads Telegram's webhook view again after a restart, not the one cached before", async () => {
    const agent = await setup();
    await validate(agent.key, agent.agentId);
    const webhookOf = async () =>
      (
        (await (await call('GET', `/api/v1/agents/${agent.agentId}/status`, agent.key)).json()) as {
          status: { telegram: { webhook: unknown } };
        }
      ).status.telegram.webhook;
    await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key);
    await harness.settle();
    telegram.failNext('getWebhookInfo', 1, TELEGRAM_ERRORS.badGateway(), agent.token);
    expect(await webhookOf()).toEqual({ error: 'Telegram could not be reached' });
    // Within the cache's 30 s the same view; after a stop and a start, Telegram's current one.
    expect(await webhookOf()).toEqual({ error: 'Telegram could not be reached' });
    await call('POST', `/api/v1/agents/${agent.agentId}/stop`, agent.key);
    await harness.settle();
    await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key);
    await harness.settle();
    expect(await webhookOf()).toMatchObject({ url: `${WEBHOOK_BASE}/telegram/${agent.agentId}` });
  });

  it("a 429 from Telegram during the start waits Telegram's retry_after, then starts", async () => {
    const agent = await setup();
    await validate(agent.key, agent.agentId);
    telegram.failNext('setWebhook', 2, TELEGRAM_ERRORS.tooManyRequests(60), agent.token);
    const before = harness.clock.now();
    await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key);
    await harness.settle();
    const status = (await (
      await call('GET', `/api/v1/agents/${agent.agentId}/status`, agent.key)
    ).json()) as {
      status: { status: string };
    };
    expect(status.status.status).toBe('running');
    expect(telegram.callsOf('setWebhook', agent.token)).toHaveLength(3);
    expect(harness.clock.now() - before).toBeGreaterThanOrEqual(120_000);
  });

  it("deleting an agent, or its customer, removes its bot's webhook, and only one pointing at it", async () => {
    const first = await setup();
    await validate(first.key, first.agentId);
    await call('POST', `/api/v1/agents/${first.agentId}/start`, first.key);
    await harness.settle();
    expect(telegram.webhookOf(first.token)).toBeDefined();
    expect((await call('DELETE', `/api/v1/agents/${first.agentId}`, first.key)).status).toBe(204);
    expect(telegram.webhookOf(first.token)).toBeUndefined();

    // A stopped agent whose bot another agent runs on now: deleting it leaves that agent's webhook.
    const stopped = await setup();
    const successor = await setup();
    await call('PUT', `/api/v1/agents/${successor.agentId}/credentials/telegram`, successor.key, {
      botToken: stopped.token,
    });
    await validate(successor.key, successor.agentId);
    await call('POST', `/api/v1/agents/${successor.agentId}/start`, successor.key);
    await harness.settle();
    const hook = telegram.webhookOf(stopped.token)?.url;
    expect(hook).toBe(`${WEBHOOK_BASE}/telegram/${successor.agentId}`);
    expect((await call('DELETE', `/api/v1/agents/${stopped.agentId}`, stopped.key)).status).toBe(204);
    expect(telegram.webhookOf(stopped.token)?.url).toBe(hook);

    // The operator deletes the successor's customer: its running agent's webhook goes too.
    const res = await call('DELETE', `/api/v1/admin/customers/${successor.customerId}`, TEST_ADMIN_KEY);
    expect(res.status).toBe(204);
    expect(telegram.webhookOf(stopped.token)).toBeUndefined();
  });

  it('a stop while Telegram is down for every try still stops, and the reconcile removes the webhook later', async () => {
    const agent = await setup();
    await validate(agent.key, agent.agentId);
    await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key);
    await harness.settle();
    // Every try of the stop (the first and three retries) fails.
    telegram.failNext('deleteWebhook', 4, TELEGRAM_ERRORS.internal(), agent.token);
    await call('POST', `/api/v1/agents/${agent.agentId}/stop`, agent.key);
    await harness.settle();
    const { agent: row } = (await (
      await call('GET', `/api/v1/agents/${agent.agentId}`, agent.key)
    ).json()) as {
      agent: { status: string; lastError: string | null };
    };
    expect(row.status).toBe('stopped');
    expect(row.lastError).toContain("Telegram's webhook could not be removed");
    expect(agent.delivered().map(({ type }) => type)).toEqual(['agent.started', 'agent.stopped']);
    expect(telegram.webhookOf(agent.token)).toBeDefined();
    // Telegram is back: the reconcile tick removes the webhook the stop left, and the error goes.
    await harness.advance(5 * 60_000);
    await harness.settle();
    expect(telegram.webhookOf(agent.token)).toBeUndefined();
    const after = (await (await call('GET', `/api/v1/agents/${agent.agentId}`, agent.key)).json()) as {
      agent: { status: string; lastError: string | null };
    };
    expect(after.agent).toMatchObject({ status: 'stopped', lastError: null });
  });

  it("a start that slips between a token change's stop and its write makes the change a 409, not a running agent on an unvalidated token", async () => {
    const agent = await setup();
    await validate(agent.key, agent.agentId);
    await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key);
    await harness.settle();
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let holding = false;
    beforeSend = async (events) => {
      if (!events.some((event) => (event.data as { type?: string })?.type === 'agent.stopped')) return;
      holding = true;
      await held;
    };
    const newToken = `${agent.token.split(':')[0]}:AAE${'n'.repeat(30)}0001`;
    const put = call('PUT', `/api/v1/agents/${agent.agentId}/credentials/telegram`, agent.key, {
      botToken: newToken,
    });
    for (let wait = 0; wait < 500 && !holding; wait++) await sleep(10);
    beforeSend = undefined;
    // The stop committed; a start now passes with the old, validated token.
    expect((await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key)).status).toBe(202);
    release();
    const res = await put;
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('agent_running');
    await harness.settle();
    // The old token, validated, is the one it runs on.
    expect(
      await readCredentialSecret(harness.services.db, harness.services.keyring, agent.agentId, 'telegram'),
    ).toBe(agent.token);
  });

  /** Waits (bounded) until `method` has a call held at the fake Telegram. */
  const heldAt = async (method: string) => {
    for (let wait = 0; wait < 500 && telegram.heldCalls(method) === 0; wait++) await sleep(10);
    expect(telegram.heldCalls(method)).toBe(1);
  };
  const statusOf = async (agent: { agentId: string; key: string }) =>
    (
      (await (await call('GET', `/api/v1/agents/${agent.agentId}`, agent.key)).json()) as {
        agent: { status: string };
      }
    ).agent.status;

  /** Sends `first`, then `second` while `first`'s Telegram call `held` is held; then lets it go. */
  async function whileHeld(
    agent: { agentId: string; key: string },
    first: 'start' | 'stop',
    held: 'setWebhook' | 'deleteWebhook',
    second: 'start' | 'stop',
  ) {
    telegram.hold(held);
    try {
      await call('POST', `/api/v1/agents/${agent.agentId}/${first}`, agent.key);
      const firstRun = harness.drain();
      await heldAt(held);
      await call('POST', `/api/v1/agents/${agent.agentId}/${second}`, agent.key);
      const secondRun = harness.drain();
      await sleep(50);
      telegram.release(held);
      await Promise.all([firstRun, secondRun]);
    } finally {
      telegram.release(held);
    }
    await harness.settle();
  }

  it('a stop while the start is registering the webhook ends stopped, without a webhook', async () => {
    const agent = await setup();
    await validate(agent.key, agent.agentId);
    await whileHeld(agent, 'start', 'setWebhook', 'stop');
    expect(await statusOf(agent)).toBe('stopped');
    expect(telegram.webhookOf(agent.token)).toBeUndefined();
  });

  it('a start while the stop is removing the webhook ends running, with its webhook', async () => {
    const agent = await setup();
    await validate(agent.key, agent.agentId);
    await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key);
    await harness.settle();
    await whileHeld(agent, 'stop', 'deleteWebhook', 'start');
    expect(await statusOf(agent)).toBe('running');
    expect(telegram.webhookOf(agent.token)?.url).toBe(`${WEBHOOK_BASE}/telegram/${agent.agentId}`);
  });

  it('saving the credentials an agent already has changes nothing: it keeps running, validated', async () => {
    const agent = await setup();
    await validate(agent.key, agent.agentId);
    await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key);
    await harness.settle();
    const before = (await (
      await call('GET', `/api/v1/agents/${agent.agentId}/credentials`, agent.key)
    ).json()) as {
      credentials: Record<string, { validatedAt: string | null; valid: boolean | null }>;
    };
    const deletes = telegram.callsOf('deleteWebhook', agent.token).length;
    const again = await call('PUT', `/api/v1/agents/${agent.agentId}/credentials/telegram`, agent.key, {
      botToken: agent.token,
    });
    expect(again.status).toBe(200);
    const claude = await call('PUT', `/api/v1/agents/${agent.agentId}/credentials/claude`, agent.key, {
      apiKey: agent.claudeKey,
    });
    expect(claude.status).toBe(200);
    await harness.settle();
    expect(await statusOf(agent)).toBe('running');
    expect(telegram.callsOf('deleteWebhook', agent.token)).toHaveLength(deletes);
    const after = (await (
      await call('GET', `/api/v1/agents/${agent.agentId}/credentials`, agent.key)
    ).json()) as {
      credentials: Record<string, { validatedAt: string | null; valid: boolean | null }>;
    };
    expect(after.credentials.telegram).toEqual(before.credentials.telegram);
    expect(after.credentials.claude).toEqual(before.credentials.claude);
    expect(after.credentials.telegram?.valid).toBe(true);
  });

  it("a running agent's Claude key may be replaced, not removed", async () => {
    const agent = await setup();
    await validate(agent.key, agent.agentId);
    await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key);
    await harness.settle();
    const removed = await call('DELETE', `/api/v1/agents/${agent.agentId}/credentials/claude`, agent.key);
    expect(removed.status).toBe(409);
    expect(((await removed.json()) as { error: { code: string } }).error.code).toBe('agent_running');
    const rotated = `sk-ant-api03-rotated-${'r'.repeat(20)}`;
    anthropic.addKey(rotated);
    const replaced = await call('PUT', `/api/v1/agents/${agent.agentId}/credentials/claude`, agent.key, {
      apiKey: rotated,
    });
    expect(replaced.status).toBe(200);
    expect(await statusOf(agent)).toBe('running');
    await call('POST', `/api/v1/agents/${agent.agentId}/stop`, agent.key);
    await harness.settle();
    expect(
      (await call('DELETE', `/api/v1/agents/${agent.agentId}/credentials/claude`, agent.key)).status,
    ).toBe(204);
  });

  it('refuses a second running agent on the same bot', async () => {
    const first = await setup();
    await validate(first.key, first.agentId);
    await call('POST', `/api/v1/agents/${first.agentId}/start`, first.key);
    await harness.settle();
    const second = await setup();
    await call('PUT', `/api/v1/agents/${second.agentId}/credentials/telegram`, second.key, {
      botToken: first.token,
    });
    await validate(second.key, second.agentId);
    const res = await call('POST', `/api/v1/agents/${second.agentId}/start`, second.key);
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('bot_in_use');
  });

  it('two agents on one bot started at the same moment: one starts, the other gets 409 bot_in_use', async () => {
    const first = await setup();
    const second = await setup();
    await call('PUT', `/api/v1/agents/${second.agentId}/credentials/telegram`, second.key, {
      botToken: first.token,
    });
    await validate(first.key, first.agentId);
    await validate(second.key, second.agentId);
    const answers = await Promise.all([
      call('POST', `/api/v1/agents/${first.agentId}/start`, first.key),
      call('POST', `/api/v1/agents/${second.agentId}/start`, second.key),
    ]);
    const outcomes = await Promise.all(
      answers.map(
        async (res) =>
          `${res.status} ${((await res.json()) as { error?: { code: string } }).error?.code ?? ''}`,
      ),
    );
    expect(outcomes.sort()).toEqual(['202 ', '409 bot_in_use']);
    await harness.settle();
  });

  it('the reconcile cron puts back a webhook URL that was changed behind our back', async () => {
    const agent = await setup();
    await validate(agent.key, agent.agentId);
    await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key);
    await harness.settle();
    const expected = telegram.webhookOf(agent.token);
    await createTelegramApi(agent.token, { apiRoot: telegram.apiRoot }).setWebhook(
      'https://elsewhere.example/hook',
    );
    expect(telegram.webhookOf(agent.token)?.url).toBe('https://elsewhere.example/hook');
    await harness.advance(5 * 60_000);
    await harness.settle();
    expect(telegram.webhookOf(agent.token)).toMatchObject({
      url: expected?.url,
      secretToken: expected?.secretToken,
    });
  });

  it('the reconcile cron repairs the other agents when Telegram refuses to repair one', async () => {
    const agents = [await setup(), await setup()];
    for (const agent of agents) {
      await validate(agent.key, agent.agentId);
      await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key);
    }
    await harness.settle();
    const expected = agents.map((agent) => telegram.webhookOf(agent.token)?.url);
    for (const agent of agents) {
      await createTelegramApi(agent.token, { apiRoot: telegram.apiRoot }).setWebhook(
        'https://elsewhere.example/x',
      );
    }
    const [broken, other] = agents as [(typeof agents)[0], (typeof agents)[0]];
    // Twice: the step's retry, were the failure thrown, would meet the second one.
    telegram.failNext('setWebhook', 2, TELEGRAM_ERRORS.internal(), broken.token);
    await harness.advance(5 * 60_000);
    await harness.settle();
    expect(telegram.webhookOf(other.token)?.url).toBe(expected[1]);
    expect(telegram.webhookOf(broken.token)?.url).toBe('https://elsewhere.example/x');
    // A later tick repairs the one Telegram refused.
    for (let tick = 0; tick < 2; tick++) {
      await harness.advance(5 * 60_000);
      await harness.settle();
    }
    expect(telegram.webhookOf(broken.token)?.url).toBe(expected[0]);
  });

  it('changing or deleting the Telegram token of a running agent stops it first', async () => {
    const agent = await setup();
    await validate(agent.key, agent.agentId);
    await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key);
    await harness.settle();
    const before = telegram.callsOf('deleteWebhook', agent.token).length;
    const res = await call('PUT', `/api/v1/agents/${agent.agentId}/credentials/telegram`, agent.key, {
      botToken: `999999:AAE${'z'.repeat(34)}`,
    });
    expect(res.status).toBe(200);
    expect(telegram.callsOf('deleteWebhook', agent.token).length).toBe(before + 1);
    const status = (await (
      await call('GET', `/api/v1/agents/${agent.agentId}/status`, agent.key)
    ).json()) as {
      status: { status: string };
    };
    expect(status.status.status).toBe('stopped');
    const log = (await (await call('GET', '/api/v1/audit-log?action=agent.stop', agent.key)).json()) as {
      entries: { details: { reason?: string } }[];
    };
    expect(log.entries[0]?.details.reason).toBe('telegram_credential_changed');
  });

  it('the daily re-validation reports a token Telegram no longer accepts', async () => {
    const agent = await setup();
    await validate(agent.key, agent.agentId);
    await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key);
    await harness.settle();
    telegram.removeBot(agent.token);
    await harness.advance(24 * 60 * 60_000);
    await harness.settle();
    const status = (await (
      await call('GET', `/api/v1/agents/${agent.agentId}/status`, agent.key)
    ).json()) as {
      status: { lastErrorCode: string; lastError: string };
    };
    expect(status.status).toMatchObject({
      lastErrorCode: 'credential_invalid',
      lastError: expect.stringMatching(/^telegram: /),
    });
    const creds = (await (
      await call('GET', `/api/v1/agents/${agent.agentId}/credentials`, agent.key)
    ).json()) as {
      credentials: { telegram: { valid: boolean } };
    };
    expect(creds.credentials.telegram.valid).toBe(false);
  });

  it("another customer's agent is a 404 on every lifecycle route", async () => {
    const alice = await setup();
    const mallory = await setup();
    for (const [method, suffix] of [
      ['POST', '/credentials/validate'],
      ['POST', '/start'],
      ['POST', '/stop'],
      ['GET', '/status'],
    ] as const) {
      const res = await call(method, `/api/v1/agents/${alice.agentId}${suffix}`, mallory.key);
      expect(res.status).toBe(404);
    }
  });
});
