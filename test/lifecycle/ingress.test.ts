import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type App, createApp } from '../../api/app';
import { createFunctions } from '../../functions/index';
import {
  credentialFingerprint,
  readCredentialSecret,
  webhookSecretFingerprints,
} from '../../lib/credentials';
import { createKeyring, credentialBinding, encryptSecret, type Keyring } from '../../lib/crypto';
import { selectRows } from '../../lib/db/client';
import { agents, credentials, telegramChats, telegramMessages } from '../../lib/db/schema';
import { listEvents } from '../../lib/executor/admin';
import type { JobEvent, SendEvent, StatementWithEvents } from '../../lib/jobs';
import { rotateWebhookSecretToken } from '../../lib/lifecycle/transitions';
import type { Logger } from '../../lib/logger';
import { TelegramIngress } from '../../lib/telegram/ingress';
import { startTelegramPolling, type TelegramPoller } from '../../lib/telegram/poller';
import { createRunningAgent } from '../support/agents';
import { databaseTargets } from '../support/db';
import { createExecutorHarness, type ExecutorHarness } from '../support/executor';
import { buildUpdate, type FakeTelegram, startFakeTelegram } from '../support/fake-telegram';
import { captureLogger } from '../support/services';

/** A customer with a running agent whose credentials are already valid (validation is tested elsewhere). */
const runningAgent = (harness: ExecutorHarness, telegram: FakeTelegram) =>
  createRunningAgent(harness, telegram, undefined);

const storedFor = (harness: ExecutorHarness, agentId: string) =>
  harness.services.db.select().from(telegramMessages).where(eq(telegramMessages.agentId, agentId));

/** Ingress marks rows sent just after it answers (off the request's path): wait, boundedly, for that. */
const markedSent = (harness: ExecutorHarness, agentId: string) =>
  vi.waitFor(
    async () => {
      const rows = await storedFor(harness, agentId);
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((row) => row.eventSentAt instanceof Date)).toBe(true);
      return rows;
    },
    { timeout: 5000, interval: 20 },
  );

describe.each(databaseTargets())('Telegram ingress on %s', (target) => {
  let telegram: FakeTelegram;
  let webhookHarness: ExecutorHarness;
  let app: App;

  beforeAll(async () => {
    telegram = await startFakeTelegram({ maxPollMs: 500 });
    webhookHarness = await createExecutorHarness({
      target,
      functions: (inngest, services) => createFunctions({ inngest, services }),
      env: { TELEGRAM_API_ROOT: telegram.apiRoot, TELEGRAM_WEBHOOK_BASE_URL: 'https://bots.example.com' },
    });
    app = createApp(webhookHarness.services, {
      sendEvent: async (events) => {
        await webhookHarness.inngest.send(events);
      },
    });
  });
  afterAll(async () => {
    await webhookHarness.close();
    await telegram.stop();
  });

  /** A running agent of the webhook harness, with the secret_token Telegram presents for it. */
  const webhookAgent = async () => {
    const agent = await runningAgent(webhookHarness, telegram);
    const { db, keyring } = webhookHarness.services;
    const secret = (await readCredentialSecret(db, keyring, agent.agentId, 'telegram_webhook')) as string;
    return { agent, secret };
  };

  /** The data of the event sent for an update of chat `chatId` stored as message `messageId`. */
  const eventData = (
    agent: { agentId: string; customerId: string },
    messageId: string | undefined,
    chatId: number,
    updateId: number,
  ) => ({
    agentId: agent.agentId,
    customerId: agent.customerId,
    messageId,
    chatId,
    updateId,
    chatKey: `${agent.agentId}:${chatId}`,
  });

  const post = (agentId: string, secret: string | undefined, body: string, application = app) =>
    application.request(`/telegram/${agentId}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(secret ? { 'x-telegram-bot-api-secret-token': secret } : {}),
      },
      body,
    });

  it('stores a webhook update once, sends its event once, and marks it sent', async () => {
    const { agent, secret } = await webhookAgent();
    expect(agent.delivery).toBe('webhook');
    const { db } = webhookHarness.services;
    const update = buildUpdate.privateText({
      from: { id: 42, first_name: 'Ann', username: 'ann' },
      text: 'hello',
    });
    expect((await post(agent.agentId, secret, JSON.stringify(update))).status).toBe(200);
    expect((await post(agent.agentId, secret, JSON.stringify(update))).status).toBe(200);
    const rows = await markedSent(webhookHarness, agent.agentId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      text: 'hello',
      fromUserId: 42,
      fromUsername: 'ann',
      direction: 'inbound',
      eventSentAt: expect.any(Date),
    });
    const events = await listEvents(db, { name: 'telegram/update.received', limit: 100 });
    const mine = events.events.filter(
      (event) => (event.data as { agentId: string }).agentId === agent.agentId,
    );
    expect(mine).toHaveLength(1);
    expect(mine[0]?.data).toEqual(eventData(agent, rows[0]?.id, 42, update.update_id));
  });

  it('with the embedded engine, stores the update, its event and its fan-out in one statement, already marked sent', async () => {
    const { agent, secret } = await webhookAgent();
    const { db } = webhookHarness.services;
    const oneStatement = createApp(webhookHarness.services, {
      sendEvent: async () => {
        throw new Error('not used: events go with the rows');
      },
      eventsStatement: webhookHarness.executor.statement,
    });
    const update = buildUpdate.privateText({ from: { id: 44, first_name: 'Ed' }, text: 'one statement' });
    const before = await selectRows<{ n: number }>(
      db,
      sql`select count(*)::int as n from executor_queue where kind = 'event'`,
    );
    expect((await post(agent.agentId, secret, JSON.stringify(update), oneStatement)).status).toBe(200);
    // A redelivery stores neither a second message nor a second event.
    expect((await post(agent.agentId, secret, JSON.stringify(update), oneStatement)).status).toBe(200);
    // No waiting: the mark committed with the row.
    const rows = await storedFor(webhookHarness, agent.agentId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ text: 'one statement', eventSentAt: expect.any(Date) });
    const events = await listEvents(db, { name: 'telegram/update.received', limit: 100 });
    const mine = events.events.filter(
      (event) => (event.data as { agentId: string }).agentId === agent.agentId,
    );
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({
      externalId: `${agent.agentId}:${update.update_id}`,
      // The agent's customer, which only the statement read, is in the event's data.
      data: eventData(agent, rows[0]?.id, 44, update.update_id),
    });
    const after = await selectRows<{ n: number }>(
      db,
      sql`select count(*)::int as n from executor_queue where kind = 'event'`,
    );
    expect((after[0]?.n ?? 0) - (before[0]?.n ?? 0)).toBe(1);
  });

  /**
   * Seven chats' quick messages as Telegram may deliver them over several connections: out of order.
   * The first two each go alone (two batches in flight); the rest wait and share statements. Their
   * update ids cross a power of ten ("…:1000" sorts before "…:999" as text, and event ids are text).
   * `byChat` lists update ids per chat in the order given.
   */
  const quickMessagesOutOfOrder = () => {
    const base = 990 + Math.floor(Math.random() * 1_000_000) * 10_000;
    const updates = Array.from({ length: 60 }, (_, i) => ({
      ...buildUpdate.privateText({ from: { id: 4_700 + (i % 7), first_name: 'Quick' }, text: `quick ${i}` }),
      update_id: base + i,
    }));
    const [first, second, ...rest] = updates;
    const delivered = [first!, second!, ...rest.slice(30).reverse(), ...rest.slice(0, 30)];
    const chatOf = new Map(updates.map((update) => [update.update_id, update.message.chat.id]));
    const byChat = (updateIds: number[]) => {
      const lists = new Map<number, number[]>();
      for (const id of updateIds) {
        const chat = chatOf.get(id) as number;
        lists.set(chat, [...(lists.get(chat) ?? []), id]);
      }
      return lists;
    };
    return { delivered, inOrder: byChat(updates.map((update) => update.update_id)), byChat };
  };

  /** A TelegramIngress of the webhook harness's database, sending its events with `sendEvent`. */
  const ingressWith = (
    sendEvent: SendEvent,
    options: { eventsStatement?: StatementWithEvents; logger?: Logger } = {},
  ) =>
    new TelegramIngress({
      db: webhookHarness.services.db,
      keyring: webhookHarness.services.keyring,
      sendEvent,
      logger: options.logger ?? captureLogger().logger,
      eventsStatement: options.eventsStatement,
    });
  const updateIdsOf = (events: JobEvent[]) =>
    events.map((event) => (event.data as { updateId: number }).updateId);

  it("with the embedded engine, each chat's events are queued, and its messages stored, in update_id order", async () => {
    const { agent } = await webhookAgent();
    const { db } = webhookHarness.services;
    const ingress = ingressWith(
      async () => {
        throw new Error('not used: events go with the rows');
      },
      { eventsStatement: webhookHarness.executor.statement },
    );
    const { delivered, inOrder, byChat } = quickMessagesOutOfOrder();
    const outcomes = await Promise.all(
      delivered.map((update) => ingress.ingest({ id: agent.agentId }, update)),
    );
    expect(outcomes.map((outcome) => outcome.result)).toEqual(delivered.map(() => 'stored'));
    const queued = await selectRows<{ update_id: string }>(
      db,
      sql`select e.data->>'updateId' as update_id from executor_queue q join executor_events e on e.id = q.run_id::uuid
          where q.kind = 'event' and e.external_id like ${`${agent.agentId}:%`} order by q.id`,
    );
    expect(byChat(queued.map((row) => Number(row.update_id)))).toEqual(inOrder);
    // Stored in that order too, each chat's messages at distinct instants (a /reset's instant forgets
    // what shares it).
    const instants = await selectRows<{ update_id: string; chat_id: string; at: string }>(
      db,
      sql`select update_id, chat_id, to_json(created_at) #>> '{}' as at from telegram_messages
          where agent_id = ${agent.agentId} order by created_at, update_id desc`,
    );
    expect(byChat(instants.map((row) => Number(row.update_id)))).toEqual(inOrder);
    const distinct = new Set(instants.map((row) => `${row.chat_id} ${row.at}`));
    expect(distinct.size).toBe(instants.length);
    // Each call still gets its own update's message.
    const stored = await storedFor(webhookHarness, agent.agentId);
    const byId = new Map(stored.map((row) => [row.id, row.updateId]));
    expect(
      outcomes.map((outcome) => (outcome.result === 'stored' ? byId.get(outcome.messageId) : undefined)),
    ).toEqual(delivered.map((update) => update.update_id));
  });

  it("with another engine, each chat's events are sent in update_id order", async () => {
    const { agent } = await webhookAgent();
    const sent: number[] = [];
    const ingress = ingressWith(async (events) => {
      sent.push(...updateIdsOf(events));
    });
    const { delivered, inOrder, byChat } = quickMessagesOutOfOrder();
    await Promise.all(delivered.map((update) => ingress.ingest({ id: agent.agentId }, update)));
    expect(byChat(sent)).toEqual(inOrder);
  });

  it("holds a chat's next update back while a batch with an earlier one of that chat is in flight", async () => {
    const { agent } = await webhookAgent();
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const sent: number[] = [];
    const first = buildUpdate.privateText({ from: { id: 4_801 }, text: 'first of A' });
    // The first batch stays in flight (its event being sent) until released.
    const ingress = ingressWith(async (events) => {
      const ids = updateIdsOf(events);
      sent.push(...ids);
      if (ids.includes(first.update_id)) await held;
    });
    const write = (update: ReturnType<typeof buildUpdate.privateText>) =>
      ingress.ingest({ id: agent.agentId }, update);
    const firstDone = write(first);
    await vi.waitFor(() => expect(sent).toEqual([first.update_id]));
    const other = buildUpdate.privateText({ from: { id: 4_802 }, text: 'chat B' });
    const nextOfA = buildUpdate.privateText({ from: { id: 4_801 }, text: 'second of A' });
    const third = buildUpdate.privateText({ from: { id: 4_803 }, text: 'chat C' });
    const others = [write(other), write(nextOfA), write(third)];
    // Chat B's batch ends, and chat C goes on; chat A's next update waits for the first batch.
    await Promise.all([others[0], others[2]]);
    expect(sent).toEqual([first.update_id, other.update_id, third.update_id]);
    release();
    await Promise.all([firstDone, ...others]);
    expect(sent).toEqual([first.update_id, other.update_id, third.update_id, nextOfA.update_id]);
  });

  it('answers 401 for a wrong secret and for an unknown agent alike', async () => {
    const agent = await runningAgent(webhookHarness, telegram);
    const wrong = await post(agent.agentId, 'not-the-secret', '{}');
    const unknown = await post('00000000-0000-4000-8000-000000000000', 'x', '{}');
    const missing = await post(agent.agentId, undefined, '{}');
    for (const res of [wrong, unknown, missing]) {
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { message: string } }).error.message).toBe(
        'Invalid secret token',
      );
    }
  });

  it('a rotated secret is refused from the next call on, and the new one taken', async () => {
    const { agent, secret } = await webhookAgent();
    const { db, keyring } = webhookHarness.services;
    const [row] = await db.select().from(agents).where(eq(agents.id, agent.agentId));
    const rotated = await rotateWebhookSecretToken(db, keyring, row as typeof agents.$inferSelect);
    const update = buildUpdate.privateText({ from: { id: 45 }, text: 'after rotation' });
    expect((await post(agent.agentId, secret, JSON.stringify(update))).status).toBe(401);
    expect((await post(agent.agentId, rotated, JSON.stringify(update))).status).toBe(200);
    expect((await storedFor(webhookHarness, agent.agentId)).map((stored) => stored.text)).toEqual([
      'after rotation',
    ]);
  });

  it('an agent whose secret predates fingerprints is checked by decrypting it, then fingerprinted', async () => {
    const { agent, secret } = await webhookAgent();
    const { db, keyring } = webhookHarness.services;
    const hook = and(eq(credentials.agentId, agent.agentId), eq(credentials.kind, 'telegram_webhook'));
    await db.update(credentials).set({ fingerprint: null }).where(hook);
    const fingerprint = async () => (await db.select().from(credentials).where(hook))[0]?.fingerprint;

    const first = buildUpdate.privateText({ from: { id: 46 }, text: 'legacy one' });
    expect((await post(agent.agentId, 'not-the-secret', JSON.stringify(first))).status).toBe(401);
    expect(await fingerprint()).toBeNull();
    expect((await post(agent.agentId, secret, JSON.stringify(first))).status).toBe(200);
    expect(await fingerprint()).toBe(webhookSecretFingerprints(keyring, secret)[keyring.current.version]);
    const second = buildUpdate.privateText({ from: { id: 46 }, text: 'legacy two' });
    expect((await post(agent.agentId, 'not-the-secret', JSON.stringify(second))).status).toBe(401);
    expect((await post(agent.agentId, secret, JSON.stringify(second))).status).toBe(200);
    const texts = (await storedFor(webhookHarness, agent.agentId)).map((stored) => stored.text);
    expect(texts.sort()).toEqual(['legacy one', 'legacy two']);
  });

  it('during a master key rotation, a secret is checked under the key its row is encrypted with', async () => {
    const { agent, secret } = await webhookAgent();
    const { db, keyring } = webhookHarness.services;
    const newKey = randomBytes(32).toString('base64');
    const rotating = createKeyring(newKey, keyring.current.key.toString('base64'));
    const appWith = (ring: Keyring) =>
      createApp(
        { ...webhookHarness.services, keyring: ring },
        {
          sendEvent: async (events) => {
            await webhookHarness.inngest.send(events);
          },
        },
      );
    const update = (text: string) => JSON.stringify(buildUpdate.privateText({ from: { id: 47 }, text }));
    // Not moved yet: its fingerprint is the old key's.
    expect((await post(agent.agentId, secret, update('old key'), appWith(rotating))).status).toBe(200);
    // Moved, as rotate-master-key does: encrypted and fingerprinted under the new key.
    const hook = and(eq(credentials.agentId, agent.agentId), eq(credentials.kind, 'telegram_webhook'));
    await db
      .update(credentials)
      .set({
        ...encryptSecret(
          rotating,
          credentialBinding(agent.customerId, agent.agentId, 'telegram_webhook'),
          secret,
        ),
        fingerprint: credentialFingerprint(rotating, 'telegram_webhook', secret),
      })
      .where(hook);
    expect((await post(agent.agentId, secret, update('new key'), appWith(rotating))).status).toBe(200);
    expect(
      (await post(agent.agentId, secret, update('new key only'), appWith(createKeyring(newKey)))).status,
    ).toBe(200);
    // A process still on the old key alone cannot check it (nor decrypt it).
    expect((await post(agent.agentId, secret, update('old key only'), appWith(keyring))).status).toBe(401);
    const texts = (await storedFor(webhookHarness, agent.agentId)).map((stored) => stored.text);
    expect(texts.sort()).toEqual(['new key', 'new key only', 'old key']);
  });

  it('acknowledges malformed updates and updates for a stopped agent without storing them', async () => {
    const { agent, secret } = await webhookAgent();
    const { db } = webhookHarness.services;
    expect((await post(agent.agentId, secret, '{"update_id": ')).status).toBe(200);
    expect((await post(agent.agentId, secret, '{"update_id": "x"}')).status).toBe(200);
    await db.update(agents).set({ status: 'stopped' }).where(eq(agents.id, agent.agentId));
    const update = buildUpdate.privateText({ from: { id: 7, first_name: 'Bo' }, text: 'late' });
    expect((await post(agent.agentId, secret, JSON.stringify(update))).status).toBe(200);
    expect(await storedFor(webhookHarness, agent.agentId)).toHaveLength(0);
  });

  it("logs a malformed update with the request's id", async () => {
    const { agent, secret } = await webhookAgent();
    const { logger, lines } = captureLogger('warn');
    const logging = createApp({ ...webhookHarness.services, logger });
    const res = await logging.request(`/telegram/${agent.agentId}`, {
      method: 'POST',
      headers: { 'x-telegram-bot-api-secret-token': secret, 'x-request-id': 'req-malformed-1' },
      body: '{"update_id": "x"}',
    });
    expect(res.status).toBe(200);
    expect(lines.find((line) => line.msg === 'malformed Telegram update acknowledged')).toMatchObject({
      requestId: 'req-malformed-1',
      agentId: agent.agentId,
    });
    // The request line is debug, below this logger's level: not written.
    expect(lines.filter((line) => line.msg === 'request')).toEqual([]);
  });

  it('logs a delivery it answers 200 at debug, and one it refuses at warn', async () => {
    const { agent, secret } = await webhookAgent();
    const requestLines = async (level: 'info' | 'debug') => {
      const { logger, lines } = captureLogger(level);
      const logging = createApp({ ...webhookHarness.services, logger });
      const update = buildUpdate.privateText({ from: { id: 9, first_name: 'Di' }, text: `at ${level}` });
      expect((await post(agent.agentId, secret, JSON.stringify(update), logging)).status).toBe(200);
      expect((await post(agent.agentId, 'wrong-secret', JSON.stringify(update), logging)).status).toBe(401);
      return lines
        .filter((line) => line.msg === 'request')
        .map((line) => ({ level: line.level, status: line.status, path: line.path }));
    };
    const path = `/telegram/${agent.agentId}`;
    // At the default level only the refusal is written: Telegram's deliveries come at the bots' rate.
    expect(await requestLines('info')).toEqual([{ level: 'warn', status: 401, path }]);
    expect(await requestLines('debug')).toEqual([
      { level: 'debug', status: 200, path },
      { level: 'warn', status: 401, path },
    ]);
  });

  it('keeps the update for the outbox when the event cannot be sent, and still answers 200', async () => {
    const { agent, secret } = await webhookAgent();
    const failing = createApp(webhookHarness.services, {
      sendEvent: async () => {
        throw new Error('engine down');
      },
    });
    const update = buildUpdate.privateText({ from: { id: 8, first_name: 'Cy' }, text: 'kept' });
    expect((await post(agent.agentId, secret, JSON.stringify(update), failing)).status).toBe(200);
    const rows = await storedFor(webhookHarness, agent.agentId);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.eventSentAt).toBeNull();
  });

  it('a burst of updates is stored once each with its event, redeliveries within it included', async () => {
    const { agent, secret } = await webhookAgent();
    const { db } = webhookHarness.services;
    const privates = Array.from({ length: 24 }, (_, i) =>
      buildUpdate.privateText({ from: { id: 5000 + (i % 8), first_name: `U${i % 8}` }, text: `burst ${i}` }),
    );
    // Two updates of one group chat in the burst: one chat row, whichever batch each lands in.
    const group = [
      buildUpdate.groupText({ chatId: -900, from: { id: 77, first_name: 'G' }, text: 'one', title: 'Old' }),
      buildUpdate.groupText({ chatId: -900, from: { id: 77, first_name: 'G' }, text: 'two', title: 'New' }),
    ];
    const updates = [...privates, ...group];
    const bodies = [...updates, ...privates.slice(0, 6)].map((update) => JSON.stringify(update));
    const statuses = await Promise.all(bodies.map((body) => post(agent.agentId, secret, body)));
    expect(statuses.map((res) => res.status)).toEqual(bodies.map(() => 200));

    const rows = await markedSent(webhookHarness, agent.agentId);
    expect(rows).toHaveLength(updates.length);
    expect(new Set(rows.map((row) => row.updateId))).toEqual(new Set(updates.map((u) => u.update_id)));
    const events = await listEvents(db, { name: 'telegram/update.received', limit: 100 });
    const mine = events.events.filter(
      (event) => (event.data as { agentId: string }).agentId === agent.agentId,
    );
    expect(mine).toHaveLength(updates.length);
    const chats = await db.select().from(telegramChats).where(eq(telegramChats.agentId, agent.agentId));
    expect(chats).toHaveLength(9);
    // Concurrent deliveries have no order between them; the chat row is one of its two states.
    expect(['Old', 'New']).toContain(chats.find((chat) => chat.chatId === -900)?.title);
  });

  it("keeps each chat's row as Telegram last described it, rewriting it only when that changed", async () => {
    const { agent, secret } = await webhookAgent();
    const { db } = webhookHarness.services;
    const chatRow = async (chatId: number) => {
      const [row] = await db
        .select()
        .from(telegramChats)
        .where(and(eq(telegramChats.agentId, agent.agentId), eq(telegramChats.chatId, chatId)));
      return row;
    };
    const deliverAll = async (updates: Record<string, unknown>[]) => {
      for (const update of updates) {
        expect((await post(agent.agentId, secret, JSON.stringify(update))).status).toBe(200);
      }
    };
    await deliverAll([
      buildUpdate.groupText({ chatId: -910, from: { id: 78 }, text: 'one', title: 'Old' }),
      buildUpdate.privateText({ from: { id: 79, username: 'old_name' }, text: 'one' }),
    ]);
    await deliverAll([
      buildUpdate.groupText({ chatId: -910, from: { id: 78 }, text: 'two', title: 'New' }),
      buildUpdate.privateText({ from: { id: 79, username: 'new_name' }, text: 'two' }),
    ]);
    const [group, direct] = [await chatRow(-910), await chatRow(79)];
    expect(group).toMatchObject({ type: 'supergroup', title: 'New' });
    expect(direct).toMatchObject({ type: 'private', username: 'new_name' });

    await deliverAll([
      buildUpdate.groupText({ chatId: -910, from: { id: 78 }, text: 'three', title: 'New' }),
      buildUpdate.privateText({ from: { id: 79, username: 'new_name' }, text: 'three' }),
    ]);
    expect((await chatRow(-910))?.updatedAt).toEqual(group?.updatedAt);
    expect((await chatRow(79))?.updatedAt).toEqual(direct?.updatedAt);
    expect(await storedFor(webhookHarness, agent.agentId)).toHaveLength(6);
  });

  it('concurrent calls for several agents share one statement, each judged by its own secret', async () => {
    const { db, keyring } = webhookHarness.services;
    const [first, second] = [
      await runningAgent(webhookHarness, telegram),
      await runningAgent(webhookHarness, telegram),
    ];
    const secretOf = async (agentId: string) =>
      (await readCredentialSecret(db, keyring, agentId, 'telegram_webhook')) as string;
    const secrets = {
      [first.agentId]: await secretOf(first.agentId),
      [second.agentId]: await secretOf(second.agentId),
    };
    const calls = Array.from({ length: 12 }, (_, i) => {
      const agentId = i % 2 === 0 ? first.agentId : second.agentId;
      // Every third call presents the other agent's secret.
      const other = agentId === first.agentId ? second.agentId : first.agentId;
      const secret = i % 3 === 0 ? secrets[other] : secrets[agentId];
      const update = buildUpdate.privateText({ from: { id: 7000 + i, first_name: 'M' }, text: `multi ${i}` });
      return { agentId, secret, valid: i % 3 !== 0, body: JSON.stringify(update) };
    });
    // In the same burst: an agent that does not exist, and malformed updates with a right and a wrong secret.
    const unknownAgent = '00000000-0000-4000-8000-0000000000aa';
    calls.push(
      { agentId: unknownAgent, secret: secrets[first.agentId], valid: false, body: calls[1]?.body as string },
      { agentId: first.agentId, secret: secrets[first.agentId], valid: true, body: '{"update_id": "x"}' },
      { agentId: first.agentId, secret: secrets[second.agentId], valid: false, body: '{"update_id": ' },
    );
    const responses = await Promise.all(calls.map((call) => post(call.agentId, call.secret, call.body)));
    expect(responses.map((res) => res.status)).toEqual(calls.map((call) => (call.valid ? 200 : 401)));
    for (const agent of [first, second]) {
      const texts = (await storedFor(webhookHarness, agent.agentId)).map((row) => row.text).sort();
      const expected = calls
        .filter((call) => call.valid && call.agentId === agent.agentId && call.body.includes('"message"'))
        .map((call) => (JSON.parse(call.body) as { message: { text: string } }).message.text)
        .sort();
      expect(texts).toEqual(expected);
    }
  });

  it('answers 5xx for an update whose write failed, stores the others sent with it, and then its redelivery', async () => {
    const { agent, secret } = await webhookAgent();
    const { db } = webhookHarness.services;
    // A write only this one update's row fails (a stand-in for a database refusing it).
    await db.execute(
      sql`alter table telegram_messages add constraint test_refuse_boom check (text <> 'boom')`,
    );
    const good = Array.from({ length: 5 }, (_, i) =>
      buildUpdate.privateText({ from: { id: 6100 + i, first_name: 'Ok' }, text: `fine ${i}` }),
    );
    const bad = buildUpdate.privateText({ from: { id: 6199, first_name: 'No' }, text: 'boom' });
    try {
      const responses = await Promise.all(
        [...good, bad].map((update) => post(agent.agentId, secret, JSON.stringify(update))),
      );
      expect(responses.map((res) => res.status)).toEqual([200, 200, 200, 200, 200, 500]);
      const rows = await markedSent(webhookHarness, agent.agentId);
      expect(rows.map((row) => row.text).sort()).toEqual(good.map((u) => u.message.text).sort());
    } finally {
      await db.execute(sql`alter table telegram_messages drop constraint test_refuse_boom`);
    }
    // Telegram delivers it again once the database takes it: stored then, once.
    expect((await post(agent.agentId, secret, JSON.stringify(bad))).status).toBe(200);
    const rows = await markedSent(webhookHarness, agent.agentId);
    expect(rows.map((row) => row.text).sort()).toEqual([...good.map((u) => u.message.text), 'boom'].sort());
  });

  it('a batch of rows that cannot be marked sent is logged once and left to the sweeper, not retried row by row', async () => {
    const agent = await runningAgent(webhookHarness, telegram);
    const { db } = webhookHarness.services;
    const { logger, lines } = captureLogger('warn');
    const ingress = ingressWith(
      async (events) => {
        await webhookHarness.inngest.send(events);
      },
      { logger },
    );
    await db.execute(
      sql`alter table telegram_messages add constraint test_refuse_marks check (event_sent_at is null or text not like 'unmarkable %')`,
    );
    try {
      const updates = Array.from({ length: 6 }, (_, i) =>
        buildUpdate.privateText({ from: { id: 6300 + i }, text: `unmarkable ${i}` }),
      );
      const outcomes = await Promise.all(
        updates.map((update) => ingress.ingest({ id: agent.agentId }, update)),
      );
      expect(outcomes.map((outcome) => outcome.result)).toEqual(updates.map(() => 'stored'));
      const refusals = () => lines.filter((line) => String(line.msg).startsWith('updates not marked sent'));
      await vi.waitFor(
        () => expect(refusals().reduce((sum, line) => sum + Number(line.updates), 0)).toBe(updates.length),
        { timeout: 5000, interval: 20 },
      );
      // One line per failed batch (the updates came in a few batches), not one per update.
      expect(refusals().length).toBeLessThan(updates.length);
      const rows = await storedFor(webhookHarness, agent.agentId);
      expect(rows.map((row) => row.eventSentAt)).toEqual(updates.map(() => null));
    } finally {
      await db.execute(sql`alter table telegram_messages drop constraint test_refuse_marks`);
    }
  });

  /** A harness without a public webhook URL and a poller over it, closed after `test`; `sent` holds what it sent. */
  async function withPolling(
    discoverEveryMs: number,
    test: (polling: { harness: ExecutorHarness; sent: JobEvent[]; poller: TelegramPoller }) => Promise<void>,
  ): Promise<void> {
    const harness = await createExecutorHarness({
      target,
      database: webhookHarness.database,
      functions: (inngest, services) => createFunctions({ inngest, services }),
      env: { TELEGRAM_API_ROOT: telegram.apiRoot },
    });
    const sent: JobEvent[] = [];
    const poller = startTelegramPolling(
      harness.services,
      async (events) => {
        sent.push(...events);
        await harness.inngest.send(events);
      },
      { discoverEveryMs, pollTimeoutSeconds: 1 },
    );
    try {
      await test({ harness, sent, poller });
    } finally {
      await poller.stop();
      await harness.close();
    }
  }

  /** Waits (bounded) for the poller's first getUpdates with `token`. */
  async function firstPollOf(token: string): Promise<void> {
    for (let wait = 0; wait < 100 && telegram.callsOf('getUpdates', token).length === 0; wait += 1) {
      await sleep(20);
    }
  }

  it('long polling follows a bot token swapped between two discovery passes (stop and start in between)', async () => {
    await withPolling(200, async ({ harness }) => {
      const agent = await runningAgent(harness, telegram);
      await firstPollOf(agent.token);
      const newToken = `${agent.botId + 1_000_000}:AAE${randomBytes(16).toString('hex')}`;
      telegram.addBot(newToken, { id: agent.botId + 1_000_000, first_name: 'New', username: 'swapped_bot' });
      const { db, keyring } = harness.services;
      // What a token change, a validation and a start do, all before the poller looks again.
      await db.transaction(async (tx) => {
        await tx
          .update(credentials)
          .set(
            encryptSecret(keyring, credentialBinding(agent.customerId, agent.agentId, 'telegram'), newToken),
          )
          .where(and(eq(credentials.agentId, agent.agentId), eq(credentials.kind, 'telegram')));
        await tx.update(agents).set({ statusSince: new Date() }).where(eq(agents.id, agent.agentId));
      });
      telegram.queueUpdate(
        newToken,
        buildUpdate.privateText({ from: { id: 98, first_name: 'New' }, text: 'to the new bot' }),
      );
      let rows = await storedFor(harness, agent.agentId);
      for (let wait = 0; wait < 150 && rows.length === 0; wait += 1) {
        await sleep(20);
        rows = await storedFor(harness, agent.agentId);
      }
      expect(rows.map((row) => row.text)).toEqual(['to the new bot']);
    });
  });

  it("long polling reports a bot token Telegram stopped accepting as the agent's error, once", async () => {
    await withPolling(200, async ({ harness, sent }) => {
      const agent = await runningAgent(harness, telegram);
      await firstPollOf(agent.token);
      telegram.removeBot(agent.token); // revoked with @BotFather: every call is now a 401
      const agentRow = async () =>
        (await harness.services.db.select().from(agents).where(eq(agents.id, agent.agentId)))[0];
      for (let wait = 0; wait < 150 && !(await agentRow())?.lastErrorCode; wait += 1) await sleep(100);
      expect(await agentRow()).toMatchObject({ status: 'running', lastErrorCode: 'telegram_token_revoked' });
      const reported = () =>
        sent
          .filter((event) => (event.data as { type?: string }).type === 'agent.error')
          .map((event) => event.data);
      expect(reported()).toEqual([
        expect.objectContaining({
          agentId: agent.agentId,
          data: expect.objectContaining({ code: 'telegram_token_revoked' }),
        }),
      ]);
      // Still failing the same way: not reported again.
      const calls = telegram.callsOf('getUpdates', agent.token).length;
      for (
        let wait = 0;
        wait < 200 && telegram.callsOf('getUpdates', agent.token).length < calls + 1;
        wait += 1
      ) {
        await sleep(100);
      }
      expect(reported()).toHaveLength(1);
    });
  }, 60_000);

  it('long polling feeds the same ingress when there is no public webhook URL', async () => {
    await withPolling(50, async ({ harness, poller }) => {
      const agent = await runningAgent(harness, telegram);
      expect(agent.delivery).toBe('polling');
      expect(telegram.webhookOf(agent.token)).toBeUndefined();
      // An update PostgreSQL could not store (a NUL) is passed over, not retried for ever at its offset.
      const unstorable = buildUpdate.privateText({ from: { id: 99, first_name: 'Pol' }, text: 'n\u0000ul' });
      telegram.queueUpdate(agent.token, unstorable);
      const update = buildUpdate.privateText({ from: { id: 99, first_name: 'Pol' }, text: 'via polling' });
      telegram.queueUpdate(agent.token, update);
      let rows = await storedFor(harness, agent.agentId);
      // Stored first, marked sent right after: wait (bounded) for both.
      for (let wait = 0; wait < 100 && !rows[0]?.eventSentAt; wait += 1) {
        await sleep(50);
        rows = await storedFor(harness, agent.agentId);
      }
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ text: 'via polling', eventSentAt: expect.any(Date) });
      expect(poller.polling()).toContain(agent.agentId);
    });
  });
});
