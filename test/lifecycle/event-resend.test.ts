import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../api/app';
import { agentStartRequested, agentStopRequested, pairingApproved } from '../../functions/events';
import { createFunctions } from '../../functions/index';
import { agents, auditLog, credentials, pairingRequests } from '../../lib/db/schema';
import { requestPairing } from '../../lib/pairing';
import { createRunningAgent } from '../support/agents';
import { apiRequest } from '../support/api-request';
import { databaseTargets } from '../support/db';
import { createExecutorHarness, type ExecutorHarness } from '../support/executor';
import { type FakeTelegram, startFakeTelegram } from '../support/fake-telegram';
import { TEST_ADMIN_KEY } from '../support/services';

const APP = 'openclaw-platform';
const WEBHOOK_BASE = 'https://bots.example.com';
let botCounter = 0;

/**
 * A state change commits before its event is sent. When the send fails, the client's retry must send the
 * event again (same id: the engine keeps one), so the agent does not stay starting/stopping and the
 * approved user is still told, once.
 */
describe.each(databaseTargets())('events re-sent on a retry, on %s', (target) => {
  let harness: ExecutorHarness;
  let app: App;
  let telegram: FakeTelegram;
  /** How many of the next sends fail (as an engine outage would). */
  let failSends = 0;
  /** Ids of the events that reached the engine, in order. */
  let sentIds: string[] = [];

  beforeAll(async () => {
    telegram = await startFakeTelegram();
    harness = await createExecutorHarness({
      target,
      functions: (inngest, services) => createFunctions({ inngest, services }),
      env: { TELEGRAM_API_ROOT: telegram.apiRoot, TELEGRAM_WEBHOOK_BASE_URL: WEBHOOK_BASE },
    });
    app = createApp(harness.services, {
      sendEvent: async (events) => {
        if (failSends > 0) {
          failSends -= 1;
          throw new Error('the jobs engine is down');
        }
        sentIds.push(...events.map((event) => event.id ?? ''));
        await harness.inngest.send(events);
      },
    });
  });
  afterAll(async () => {
    await harness.close();
    await telegram.stop();
  });
  beforeEach(() => {
    failSends = 0;
    sentIds = [];
  });

  const call = (method: string, path: string, key: string) => apiRequest(app, method, path, { key });

  async function agentStatus(agentId: string) {
    const [row] = await harness.services.db.select().from(agents).where(eq(agents.id, agentId));
    return row?.status;
  }

  async function runsFor(fn: string, agentId: string) {
    const runs = await harness.runsOf(`${APP}-${fn}`);
    return runs.filter((run) => run.event.data.agentId === agentId);
  }

  /** Status and output of each run, in the order of their event ids (the manual clock stands still). */
  async function outcomes(fn: string, agentId: string) {
    const runs = await runsFor(fn, agentId);
    return runs
      .sort((a, b) => a.event.id.localeCompare(b.event.id))
      .map((run) => [run.event.id, run.status, run.output]);
  }

  /** A stopped agent whose bot is on the fake Telegram, both credentials marked valid. */
  async function stoppedAgent() {
    botCounter += 1;
    const botId = 810000 + botCounter;
    const token = `${botId}:AAE${'y'.repeat(30)}${String(botCounter).padStart(4, '0')}`;
    telegram.addBot(token, { id: botId, first_name: 'Bot', username: `resend_${botCounter}_bot` });
    const created = (await (
      await app.request('/api/v1/admin/customers', {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Resend', plan: 'pro' }),
      })
    ).json()) as { customer: { id: string }; apiKey: string };
    const key = created.apiKey;
    const agent = (await (
      await app.request('/api/v1/agents', {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Resend bot' }),
      })
    ).json()) as { agent: { id: string } };
    const agentId = agent.agent.id;
    for (const [kind, body] of [
      ['telegram', { botToken: token }],
      ['claude', { apiKey: `sk-ant-api03-resend-${'k'.repeat(20)}-${botCounter}` }],
    ] as const) {
      const res = await app.request(`/api/v1/agents/${agentId}/credentials/${kind}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(200);
    }
    await harness.services.db
      .update(credentials)
      .set({ validationStatus: 'valid', validatedAt: new Date() })
      .where(eq(credentials.agentId, agentId));
    return { key, customerId: created.customer.id, agentId, token };
  }

  it('start: a retry after a failed send sends the start again; the agent starts once', async () => {
    const agent = await stoppedAgent();
    failSends = 1;
    const first = await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key);
    expect(first.status).toBeGreaterThanOrEqual(500);
    expect(await agentStatus(agent.agentId)).toBe('starting');
    await harness.settle();
    expect(await runsFor('start-agent', agent.agentId)).toHaveLength(0);

    const retry = await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key);
    expect(retry.status).toBe(202);
    const body = (await retry.json()) as { agent: { status: string; statusSince: string } };
    expect(body.agent.status).toBe('starting');
    const eventId = `start-${agent.agentId}-${body.agent.statusSince}`;
    expect(sentIds).toEqual([eventId]);
    // Another retry before the engine ran it: the same id again, which the engine drops.
    expect((await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key)).status).toBe(202);
    expect(sentIds).toEqual([eventId, eventId]);

    await harness.settle();
    expect(await agentStatus(agent.agentId)).toBe('running');
    expect(await runsFor('start-agent', agent.agentId)).toHaveLength(1);
    expect(telegram.callsOf('setWebhook', agent.token)).toHaveLength(1);

    // Running: a start sends nothing.
    expect((await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key)).status).toBe(202);
    expect(sentIds).toHaveLength(2);

    // A copy that arrives after the dedupe window (another id) finds the agent running and does nothing.
    await harness.send({
      name: agentStartRequested.name,
      id: `${eventId}-late`,
      data: { agentId: agent.agentId, customerId: agent.customerId },
    });
    await harness.settle();
    expect(await outcomes('start-agent', agent.agentId)).toEqual([
      [eventId, 'completed', { started: true, delivery: 'webhook' }],
      [`${eventId}-late`, 'completed', { started: false }],
    ]);
    expect(telegram.callsOf('setWebhook', agent.token)).toHaveLength(1);
    expect(await agentStatus(agent.agentId)).toBe('running');
  });

  it('stop: a retry after a failed send sends the stop again; the agent stops once', async () => {
    const agent = await stoppedAgent();
    expect((await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key)).status).toBe(202);
    await harness.settle();
    expect(await agentStatus(agent.agentId)).toBe('running');
    const deletesBefore = telegram.callsOf('deleteWebhook', agent.token).length;
    sentIds = [];

    failSends = 1;
    const first = await call('POST', `/api/v1/agents/${agent.agentId}/stop`, agent.key);
    expect(first.status).toBeGreaterThanOrEqual(500);
    expect(await agentStatus(agent.agentId)).toBe('stopping');
    await harness.settle();
    expect(await runsFor('stop-agent', agent.agentId)).toHaveLength(0);

    const retry = await call('POST', `/api/v1/agents/${agent.agentId}/stop`, agent.key);
    expect(retry.status).toBe(202);
    const body = (await retry.json()) as { agent: { status: string; statusSince: string } };
    expect(body.agent.status).toBe('stopping');
    const eventId = `stop-${agent.agentId}-${body.agent.statusSince}`;
    expect(sentIds).toEqual([eventId]);
    expect((await call('POST', `/api/v1/agents/${agent.agentId}/stop`, agent.key)).status).toBe(202);
    expect(sentIds).toEqual([eventId, eventId]);

    await harness.settle();
    expect(await agentStatus(agent.agentId)).toBe('stopped');
    expect(await runsFor('stop-agent', agent.agentId)).toHaveLength(1);
    expect(telegram.callsOf('deleteWebhook', agent.token)).toHaveLength(deletesBefore + 1);

    // Stopped: a stop sends nothing; a late copy (another id) does nothing.
    expect((await call('POST', `/api/v1/agents/${agent.agentId}/stop`, agent.key)).status).toBe(202);
    expect(sentIds).toHaveLength(2);
    await harness.send({
      name: agentStopRequested.name,
      id: `${eventId}-late`,
      data: { agentId: agent.agentId, customerId: agent.customerId, reason: 'requested' },
    });
    await harness.settle();
    expect(await outcomes('stop-agent', agent.agentId)).toEqual([
      [eventId, 'completed', { stopped: true }],
      [`${eventId}-late`, 'completed', { stopped: false }],
    ]);
    expect(telegram.callsOf('deleteWebhook', agent.token)).toHaveLength(deletesBefore + 1);
    expect(await agentStatus(agent.agentId)).toBe('stopped');
  });

  /** A running agent whose Telegram token is then replaced, with the first `failures` sends failing. */
  async function replaceTokenOfRunningAgent(failures: number) {
    const agent = await stoppedAgent();
    expect((await call('POST', `/api/v1/agents/${agent.agentId}/start`, agent.key)).status).toBe(202);
    await harness.settle();
    expect(await agentStatus(agent.agentId)).toBe('running');
    sentIds = [];
    const newToken = `${agent.token.split(':')[0]}:AAE${'n'.repeat(34)}`;
    const put = () =>
      app.request(`/api/v1/agents/${agent.agentId}/credentials/telegram`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${agent.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ botToken: newToken }),
      });
    failSends = failures;
    const first = await put();
    return { ...agent, first, put };
  }

  async function unsentStopEventAt(agentId: string) {
    const [row] = await harness.services.db.select().from(agents).where(eq(agents.id, agentId));
    return row?.unsentStopEventAt;
  }

  const stoppedEvents = async (agentId: string) =>
    (await runsFor('deliver-webhook', agentId))
      .filter((run) => run.event.data.type === 'agent.stopped')
      .map((run) => [run.event.id, run.event.data.data, run.event.data.occurredAt]);

  it('a token change: a retry after a failed send tells the customer the agent stopped, once', async () => {
    const agent = await replaceTokenOfRunningAgent(1);
    expect(agent.first.status).toBeGreaterThanOrEqual(500);
    expect(await agentStatus(agent.agentId)).toBe('stopped');
    const at = await unsentStopEventAt(agent.agentId);
    expect(at).toBeInstanceOf(Date);
    const eventId = `customer-event-${agent.agentId}-stopped-${at?.getTime()}`;
    await harness.settle();
    expect(await stoppedEvents(agent.agentId)).toEqual([]);

    const retry = await agent.put();
    expect(retry.status).toBe(200);
    expect(sentIds).toEqual([eventId]);
    expect(await unsentStopEventAt(agent.agentId)).toBeNull();
    // The change is done: another PUT neither stops nor tells anything.
    expect((await agent.put()).status).toBe(200);
    expect(sentIds).toEqual([eventId]);

    await harness.settle();
    expect(await stoppedEvents(agent.agentId)).toEqual([
      [eventId, { reason: 'telegram_credential_changed' }, at?.toISOString()],
    ]);
    const stops = await harness.services.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, 'agent.stop'), eq(auditLog.targetId, agent.agentId)));
    expect(stops.map((entry) => entry.details)).toEqual([{ reason: 'telegram_credential_changed' }]);
  });

  it('a token change whose request is not retried: the reconcile cron sends the stop event', async () => {
    const agent = await replaceTokenOfRunningAgent(1);
    expect(agent.first.status).toBeGreaterThanOrEqual(500);
    const at = await unsentStopEventAt(agent.agentId);
    expect(at).toBeInstanceOf(Date);
    await harness.advance(5 * 60_000);
    await harness.settle();
    expect(await unsentStopEventAt(agent.agentId)).toBeNull();
    const eventId = `customer-event-${agent.agentId}-stopped-${at?.getTime()}`;
    expect(await stoppedEvents(agent.agentId)).toEqual([
      [eventId, { reason: 'telegram_credential_changed' }, at?.toISOString()],
    ]);
    // The next round has nothing left to send.
    await harness.advance(5 * 60_000);
    await harness.settle();
    expect(await stoppedEvents(agent.agentId)).toHaveLength(1);
  });

  it('a token change that sends at once leaves nothing for the cron', async () => {
    const agent = await replaceTokenOfRunningAgent(0);
    expect(agent.first.status).toBe(200);
    expect(sentIds).toHaveLength(1);
    expect(await unsentStopEventAt(agent.agentId)).toBeNull();
    await harness.advance(5 * 60_000);
    await harness.settle();
    expect(await stoppedEvents(agent.agentId)).toHaveLength(1);
  });

  /** A running agent with the pairing policy and one pending code, and the code's API path. */
  async function pendingPairing(name: string, userBase: number) {
    const agent = await createRunningAgent(harness, telegram, undefined, {
      agent: { name, telegramDmPolicy: 'pairing' },
    });
    const userId = userBase + botCounter;
    const pairing = await requestPairing(harness.services.db, {
      agentId: agent.agentId,
      telegramUserId: userId,
      chatId: userId,
      now: new Date(),
    });
    if (pairing.status !== 'created') throw new Error('expected a code');
    const path = `/api/v1/agents/${agent.agentId}/pairing-requests/${pairing.code}`;
    return { agent, userId, pairing, path };
  }

  it('approve: an audit write that fails undoes the approval; the retry approves and audits once', async () => {
    const { agent, userId, pairing, path: codePath } = await pendingPairing('Audited', 7100);
    const path = `${codePath}/approve`;
    const db = harness.services.db;
    const requestRow = async () =>
      (await db.select().from(pairingRequests).where(eq(pairingRequests.id, pairing.request.id)))[0];
    const allowFrom = async () =>
      (await db.select().from(agents).where(eq(agents.id, agent.agentId)))[0]?.telegramAllowFrom;

    // The audit log refuses this approval's row, as a failing database would.
    await db.execute(sql`create function refuse_pairing_audit() returns trigger language plpgsql as $$
      begin raise exception 'audit log unavailable'; end $$`);
    await db.execute(sql`create trigger refuse_pairing_audit before insert on audit_log for each row
      when (new.action = 'pairing.approve') execute function refuse_pairing_audit()`);
    try {
      const first = await call('POST', path, agent.apiKey);
      expect(first.status).toBe(500);
    } finally {
      await db.execute(sql`drop trigger refuse_pairing_audit on audit_log`);
      await db.execute(sql`drop function refuse_pairing_audit()`);
    }
    expect(await requestRow()).toMatchObject({ status: 'pending', decidedAt: null });
    expect(await allowFrom()).toEqual([]);
    expect(sentIds).toEqual([]);

    const retry = await call('POST', path, agent.apiKey);
    expect(retry.status).toBe(200);
    expect(await requestRow()).toMatchObject({ status: 'approved' });
    expect(await allowFrom()).toEqual([String(userId)]);
    const audits = await db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, 'pairing.approve'), eq(auditLog.targetId, pairing.request.id)));
    expect(audits).toHaveLength(1);
    expect(sentIds).toEqual([`pairing-approved-${pairing.request.id}`]);
  });

  it('approve: a retry after a failed send answers the approval again and the user is told once', async () => {
    const { agent, userId, pairing, path } = await pendingPairing('Gatekeeper', 6100);
    const notices = () =>
      telegram.sent.filter(
        (m) => m.token === agent.token && m.chatId === userId && /You now have access/.test(m.text ?? ''),
      );
    const auditOf = (action: string) =>
      harness.services.db
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.action, action), eq(auditLog.targetId, pairing.request.id)));

    failSends = 1;
    const first = await call('POST', `${path}/approve`, agent.apiKey);
    expect(first.status).toBeGreaterThanOrEqual(500);
    await harness.settle();
    expect(notices()).toHaveLength(0);

    const retry = await call('POST', `${path}/approve`, agent.apiKey);
    expect(retry.status).toBe(200);
    const body = (await retry.json()) as {
      pairingRequest: { id: string; status: string; decidedAt: string };
    };
    expect(body.pairingRequest).toMatchObject({ id: pairing.request.id, status: 'approved' });
    const eventId = `pairing-approved-${pairing.request.id}`;
    expect(sentIds).toEqual([eventId]);
    // Once more: the same request (same decision time), the same event id.
    const again = await call('POST', `${path}/approve`, agent.apiKey);
    expect(again.status).toBe(200);
    expect(((await again.json()) as typeof body).pairingRequest).toEqual(body.pairingRequest);
    expect(sentIds).toEqual([eventId, eventId]);

    await harness.settle();
    expect(notices()).toHaveLength(1);
    expect(await runsFor('notify-pairing-approved', agent.agentId)).toHaveLength(1);
    expect(await auditOf('pairing.approve')).toHaveLength(1);
    const [request] = await harness.services.db
      .select()
      .from(pairingRequests)
      .where(eq(pairingRequests.id, pairing.request.id));
    expect(request?.notifiedAt).toBeInstanceOf(Date);
    const [row] = await harness.services.db.select().from(agents).where(eq(agents.id, agent.agentId));
    expect(row?.telegramAllowFrom).toEqual([String(userId)]);

    // A copy after the dedupe window (another id) finds the recorded notice: the user is not told twice.
    await harness.send({
      name: pairingApproved.name,
      id: `${eventId}-late`,
      data: { agentId: agent.agentId, customerId: agent.customerId, pairingRequestId: pairing.request.id },
    });
    await harness.settle();
    expect(await outcomes('notify-pairing-approved', agent.agentId)).toEqual([
      [eventId, 'completed', { status: 'sent' }],
      [`${eventId}-late`, 'completed', { status: 'already_sent' }],
    ]);
    expect(notices()).toHaveLength(1);

    // Rejecting an approved code is still a 404, and so is approving a rejected one.
    const reject = await call('POST', `${path}/reject`, agent.apiKey);
    expect(reject.status).toBe(404);
    expect(await reject.json()).toMatchObject({
      error: { code: 'pairing_request_not_found', details: { status: 'approved' } },
    });
    const other = await requestPairing(harness.services.db, {
      agentId: agent.agentId,
      telegramUserId: userId + 1,
      chatId: userId + 1,
      now: new Date(),
    });
    if (other.status !== 'created') throw new Error('expected a code');
    const otherPath = `/api/v1/agents/${agent.agentId}/pairing-requests/${other.code}`;
    expect((await call('POST', `${otherPath}/reject`, agent.apiKey)).status).toBe(200);
    const approveRejected = await call('POST', `${otherPath}/approve`, agent.apiKey);
    expect(approveRejected.status).toBe(404);
    expect(await approveRejected.json()).toMatchObject({
      error: { code: 'pairing_request_not_found', details: { status: 'rejected' } },
    });
    expect(sentIds).toEqual([eventId, eventId]);
    expect(await auditOf('pairing.approve')).toHaveLength(1);
  });
});
