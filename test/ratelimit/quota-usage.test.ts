import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type App, createApp } from '../../api/app';
import { createCustomer } from '../../lib/customers';
import { agents, telegramMessages } from '../../lib/db/schema';
import { checkMessageQuota, checkTokenBudget } from '../../lib/ratelimit/quota';
import { createRedis } from '../../lib/redis';
import type { Services } from '../../lib/services';
import { createTestDatabase, databaseTargets, type TestDatabase } from '../support/db';
import { createTestServices, TEST_ADMIN_KEY } from '../support/services';

const system = { actor: { type: 'system' as const }, requestId: undefined, ip: undefined };
const cases = databaseTargets().flatMap((target) =>
  (inject('redisUrl') ? ['memory', 'redis'] : ['memory']).map((store) => [target, store] as const),
);

describe.each(cases)('quotas and usage on %s with the %s store', (target, store) => {
  let database: TestDatabase;
  let services: Services;
  let app: App;

  beforeAll(async () => {
    database = await createTestDatabase(target);
    const redis =
      store === 'redis' ? createRedis({ redis: { mode: 'tcp', url: inject('redisUrl') } }) : undefined;
    services = await createTestServices({ database: database.handle, ...(redis ? { redis } : {}) });
    app = createApp(services);
  });
  afterAll(async () => {
    await services.close();
    await database.destroy();
  });

  async function customerWithAgent(
    limits: { messagesPerDay?: number } = {},
    dailyTokenBudget: number | null = null,
  ) {
    const { customer, apiKey } = await createCustomer(services.db, system, services.keyring, {
      name: 'quota',
      plan: 'free',
      limits,
    } as never);
    const [agent] = await services.db
      .insert(agents)
      .values({ customerId: customer.id, name: 'bot', model: 'claude-sonnet-5-5', dailyTokenBudget })
      .returning();
    if (!agent) throw new Error('no agent');
    return { customerId: customer.id, apiKey, agentId: agent.id };
  }

  /** A stored inbound message: what a quota counts, and what a daily notice is claimed for. */
  async function inbound(ids: { customerId: string; agentId: string }, chatId: number): Promise<string> {
    const [row] = await services.db
      .insert(telegramMessages)
      .values({ ...ids, chatId, direction: 'inbound', text: 'hi' })
      .returning({ id: telegramMessages.id });
    if (!row) throw new Error('no message');
    return row.id;
  }

  it('allows exactly messagesPerDay messages, then notifies each chat once a day', async () => {
    const { customerId, agentId } = await customerWithAgent({ messagesPerDay: 2 });
    const now = new Date('2030-06-01T12:00:00Z');
    const check = async (chatId: number) =>
      checkMessageQuota(services.db, services.limits.messages, {
        customerId,
        agentId,
        chatId,
        messageId: await inbound({ customerId, agentId }, chatId),
        now,
      });
    expect(await check(1)).toEqual({ allowed: true, remaining: 1, limit: 2 });
    expect(await check(2)).toEqual({ allowed: true, remaining: 0, limit: 2 });
    expect(await check(1)).toEqual({ allowed: false, limit: 2, notify: true });
    expect(await check(1)).toEqual({ allowed: false, limit: 2, notify: false });
    expect(await check(2)).toEqual({ allowed: false, limit: 2, notify: true });
    const concurrent = await Promise.all([check(3), check(3), check(3)]);
    expect(concurrent.filter((decision) => !decision.allowed && decision.notify)).toHaveLength(1);
  });

  it('a limit changed during the day applies to what was already counted, refusals not included', async () => {
    const { customerId, agentId } = await customerWithAgent({ messagesPerDay: 2 });
    const now = new Date();
    const check = async () =>
      checkMessageQuota(services.db, services.limits.messages, {
        customerId,
        agentId,
        chatId: 7,
        messageId: await inbound({ customerId, agentId }, 7),
        now,
      });
    const allowed = async (times: number) => {
      const decisions: boolean[] = [];
      for (let index = 0; index < times; index++) decisions.push((await check()).allowed);
      return decisions;
    };
    expect(await allowed(3)).toEqual([true, true, false]);
    const raise = await app.request(`/api/v1/admin/customers/${customerId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ limits: { messagesPerDay: 3 } }),
    });
    expect(raise.status).toBe(200);
    // One more today, not three more (a new counter) and not none (the refused one counted).
    expect(await allowed(2)).toEqual([true, false]);
    const usage = await app.request(`/api/v1/admin/customers/${customerId}/usage`, {
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
    });
    expect(((await usage.json()) as { usage: { messages: { used: number } } }).usage.messages.used).toBe(3);
  });

  it('counts a message once however often it is decided; a refused one keeps its notice', async () => {
    const { customerId, agentId } = await customerWithAgent({ messagesPerDay: 2 });
    const now = new Date();
    const check = (messageId: string) =>
      checkMessageQuota(services.db, services.limits.messages, {
        customerId,
        agentId,
        chatId: 8,
        messageId,
        now,
      });
    const used = async () => (await services.limits.messages.usage(`customer:${customerId}`, 2)).used;
    const first = await inbound({ customerId, agentId }, 8);
    expect(await check(first)).toEqual({ allowed: true, remaining: 1, limit: 2 });
    // Its decision run again (a crash lost the result; an admin replay of a failed answer).
    expect(await check(first)).toEqual({ allowed: true, remaining: 1, limit: 2 });
    expect(await check(first)).toMatchObject({ allowed: true });
    expect(await used()).toBe(1);
    const second = await inbound({ customerId, agentId }, 8);
    expect(await check(second)).toMatchObject({ allowed: true, remaining: 0 });
    const refused = await inbound({ customerId, agentId }, 8);
    expect(await check(refused)).toEqual({ allowed: false, limit: 2, notify: true });
    // Decided again, the refused message still sends the day's notice; another message does not.
    expect(await check(refused)).toEqual({ allowed: false, limit: 2, notify: true });
    expect(await check(await inbound({ customerId, agentId }, 8))).toEqual({
      allowed: false,
      limit: 2,
      notify: false,
    });
    expect(await used()).toBe(2);
  });

  it("stops Claude once today's tokens reach the agent's budget, notifying each chat once", async () => {
    const { customerId, agentId } = await customerWithAgent({}, 1000);
    const now = new Date();
    const check = async (dailyTokenBudget: number | null, messageId?: string) =>
      checkTokenBudget(services.db, {
        agentId,
        chatId: 5,
        messageId: messageId ?? (await inbound({ customerId, agentId }, 5)),
        dailyTokenBudget,
        now,
      });
    expect(await check(1000)).toEqual({
      allowed: true,
      used: 0,
      budget: 1000,
    });
    await services.db.insert(telegramMessages).values([
      {
        agentId,
        customerId,
        chatId: 5,
        direction: 'outbound',
        text: 'a',
        inputTokens: 60,
        outputTokens: 300,
        cacheCreationTokens: 540,
      },
      // Anthropic's input_tokens leaves the cached system prompt out: its 90 tokens read count too.
      {
        agentId,
        customerId,
        chatId: 5,
        direction: 'outbound',
        text: 'b',
        inputTokens: 5,
        outputTokens: 5,
        cacheReadTokens: 90,
      },
    ]);
    const notified = await inbound({ customerId, agentId }, 5);
    expect(await check(1000, notified)).toEqual({
      allowed: false,
      used: 1000,
      budget: 1000,
      notify: true,
    });
    expect(await check(1000)).toMatchObject({ allowed: false, notify: false });
    // The message that claimed the notice, decided again (its first result lost), still sends it.
    expect(await check(1000, notified)).toMatchObject({ allowed: false, notify: true });
    expect(await check(null)).toMatchObject({ allowed: true });
  });

  it('reports usage to the customer and to the admin', async () => {
    const { customerId, agentId, apiKey } = await customerWithAgent({ messagesPerDay: 10 });
    await checkMessageQuota(services.db, services.limits.messages, {
      customerId,
      agentId,
      chatId: 9,
      messageId: await inbound({ customerId, agentId }, 9),
      now: new Date(),
    });
    await services.db.insert(telegramMessages).values([
      {
        agentId,
        customerId,
        chatId: 9,
        direction: 'outbound',
        text: 'a',
        inputTokens: 120,
        outputTokens: 30,
        cacheReadTokens: 2000,
        cacheCreationTokens: 0,
      },
      {
        agentId,
        customerId,
        chatId: 9,
        direction: 'outbound',
        text: 'b',
        inputTokens: 10,
        outputTokens: 5,
        cacheReadTokens: null,
        cacheCreationTokens: 2000,
      },
      {
        agentId,
        customerId,
        chatId: 9,
        direction: 'outbound',
        text: 'old',
        inputTokens: 1,
        outputTokens: 1,
        createdAt: new Date(Date.now() - 40 * 24 * 3600 * 1000),
      },
    ]);
    const res = await app.request('/api/v1/usage', { headers: { authorization: `Bearer ${apiKey}` } });
    expect(res.status).toBe(200);
    const { usage } = (await res.json()) as { usage: Record<string, unknown> };
    expect(usage).toMatchObject({
      plan: 'free',
      limits: { apiRequestsPerHour: 100, messagesPerDay: 10 },
      rateLimits: 'enforced',
      apiRequests: { used: 1, remaining: 99 },
      messages: { used: 1, remaining: 9 },
      tokens: {
        today: { inputTokens: 130, outputTokens: 35, cacheReadTokens: 2000, cacheCreationTokens: 2000 },
        month: { inputTokens: 130, outputTokens: 35, cacheReadTokens: 2000, cacheCreationTokens: 2000 },
      },
      agents: [
        {
          agentId,
          name: 'bot',
          today: { inputTokens: 130, outputTokens: 35, cacheReadTokens: 2000, cacheCreationTokens: 2000 },
        },
      ],
    });
    const admin = await app.request(`/api/v1/admin/customers/${customerId}/usage`, {
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
    });
    expect(admin.status).toBe(200);
    expect(((await admin.json()) as { usage: { messages: { used: number } } }).usage.messages.used).toBe(1);
    // A UUID is the same id in capitals: the same customer, with the same counters.
    const upper = await app.request(`/api/v1/admin/customers/${customerId.toUpperCase()}/usage`, {
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
    });
    expect(upper.status).toBe(200);
    expect(
      ((await upper.json()) as { usage: { apiRequests: { used: number }; messages: { used: number } } })
        .usage,
    ).toMatchObject({ apiRequests: { used: 1 }, messages: { used: 1 } });
    const missing = await app.request('/api/v1/admin/customers/00000000-0000-4000-8000-000000000000/usage', {
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
    });
    expect(missing.status).toBe(404);
  });
  it("keeps a deleted agent's tokens in today's and the month's usage, named as it was", async () => {
    const { customerId, agentId: kept, apiKey } = await customerWithAgent();
    const [gone] = await services.db
      .insert(agents)
      .values({ customerId, name: 'retired', model: 'claude-sonnet-5-5' })
      .returning();
    if (!gone) throw new Error('no agent');
    const now = new Date();
    const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1, 0, 0, 1));
    const answer = (agentId: string, tokens: number, createdAt: Date) => ({
      agentId,
      customerId,
      chatId: 9,
      direction: 'outbound' as const,
      text: 'a',
      inputTokens: tokens,
      outputTokens: tokens,
      cacheReadTokens: tokens,
      createdAt,
    });
    await services.db
      .insert(telegramMessages)
      .values([
        answer(gone.id, 100, now),
        answer(gone.id, 10, monthStart),
        answer(gone.id, 1, new Date(now.getTime() - 40 * 24 * 3600 * 1000)),
        answer(kept, 1000, now),
      ]);
    const usage = async () => {
      const res = await app.request('/api/v1/usage', { headers: { authorization: `Bearer ${apiKey}` } });
      expect(res.status).toBe(200);
      return ((await res.json()) as { usage: { tokens: unknown; agents: unknown[] } }).usage;
    };
    const before = await usage();

    const deleted = await app.request(`/api/v1/agents/${gone.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${apiKey}` },
    });
    expect(deleted.status).toBe(204);
    const after = await usage();
    expect(after.tokens).toEqual(before.tokens);
    const todayOfGone = monthStart.getUTCDate() === now.getUTCDate() ? 110 : 100;
    const counts = (n: number) => ({
      inputTokens: n,
      outputTokens: n,
      cacheReadTokens: n,
      cacheCreationTokens: 0,
    });
    expect(after.agents).toEqual([
      { agentId: kept, name: 'bot', deletedAt: null, today: counts(1000), month: counts(1000) },
      {
        agentId: gone.id,
        name: 'retired',
        deletedAt: expect.any(String),
        today: counts(todayOfGone),
        month: counts(110),
      },
    ]);
  });
});
