import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { agents } from '../../lib/db/schema';
import type { ErrorBody } from '../../lib/errors';
import type { JobEvent } from '../../lib/jobs';
import { PAIRING_APPROVED, requestPairing } from '../../lib/pairing';
import { MAX_ALLOW_FROM_ENTRIES } from '../../lib/schemas/agents';
import { databaseTargets } from '../support/db';
import { json, useApiHarness } from './harness';

/** `count` distinct numeric ids, as long as real Telegram ids. */
const ids = (count: number, from = 1) =>
  Array.from({ length: count }, (_, i) => String(7_000_000_000 + from + i));

describe.each(databaseTargets())('approving a pairing code into a full allowlist on %s', (target) => {
  const sent: JobEvent[] = [];
  const harness = useApiHarness(target, {}, { sendEvent: async (events) => void sent.push(...events) });

  it('is a 409 allowlist_full that changes nothing, and succeeds once the customer made room', async () => {
    const { apiKey } = await harness.createCustomer({ plan: 'pro' });
    const full = ids(MAX_ALLOW_FROM_ENTRIES);
    const agentId = await harness.createAgent(apiKey, { telegramAllowFrom: full });
    const agentPath = `/api/v1/agents/${agentId}`;
    const pairing = await requestPairing(harness.services.db, {
      agentId,
      telegramUserId: 42,
      chatId: 42,
      now: new Date(),
    });
    if (pairing.status !== 'created') throw new Error('expected a code');

    const refused = await harness.call('POST', `${agentPath}/pairing-requests/${pairing.code}/approve`, {
      key: apiKey,
    });
    expect(refused.status).toBe(409);
    expect((await json<ErrorBody>(refused)).error).toMatchObject({
      code: 'allowlist_full',
      details: { field: 'telegramAllowFrom', max: MAX_ALLOW_FROM_ENTRIES },
    });
    const agent = await json<{ agent: { telegramAllowFrom: string[] } }>(
      await harness.call('GET', agentPath, { key: apiKey }),
    );
    expect(agent.agent.telegramAllowFrom).toEqual(full);
    const pending = await json<{ pairingRequests: { code: string }[] }>(
      await harness.call('GET', `${agentPath}/pairing-requests?status=pending`, { key: apiKey }),
    );
    expect(pending.pairingRequests.map((request) => request.code)).toEqual([pairing.code]);
    expect(sent.filter((event) => event.data.agentId === agentId)).toEqual([]);

    // The customer removes one entry; the same code is approved into the freed place.
    const patched = await harness.call('PATCH', agentPath, {
      key: apiKey,
      body: { telegramAllowFrom: full.slice(1) },
    });
    expect(patched.status).toBe(200);
    const approved = await harness.call('POST', `${agentPath}/pairing-requests/${pairing.code}/approve`, {
      key: apiKey,
    });
    expect(approved.status).toBe(200);
    const after = await json<{ agent: { telegramAllowFrom: string[] } }>(
      await harness.call('GET', agentPath, { key: apiKey }),
    );
    expect(after.agent.telegramAllowFrom).toEqual([...full.slice(1), '42']);
    expect(sent.filter((event) => event.data.agentId === agentId)).toMatchObject([
      { name: PAIRING_APPROVED, data: { pairingRequestId: pairing.request.id } },
    ]);
    // The allowlist is still one the API accepts back as it is.
    const resaved = await harness.call('PATCH', agentPath, {
      key: apiKey,
      body: { telegramAllowFrom: after.agent.telegramAllowFrom },
    });
    expect(resaved.status).toBe(200);
  });

  it('approves a sender the full allowlist already holds, without adding them again', async () => {
    const { apiKey } = await harness.createCustomer({ plan: 'pro' });
    const full = ids(MAX_ALLOW_FROM_ENTRIES);
    const agentId = await harness.createAgent(apiKey, { telegramAllowFrom: full });
    const listed = Number(full[500]);
    const pairing = await requestPairing(harness.services.db, {
      agentId,
      telegramUserId: listed,
      chatId: listed,
      now: new Date(),
    });
    if (pairing.status !== 'created') throw new Error('expected a code');
    const approved = await harness.call(
      'POST',
      `/api/v1/agents/${agentId}/pairing-requests/${pairing.code}/approve`,
      { key: apiKey },
    );
    expect(approved.status).toBe(200);
    const agent = await json<{ agent: { telegramAllowFrom: string[] } }>(
      await harness.call('GET', `/api/v1/agents/${agentId}`, { key: apiKey }),
    );
    expect(agent.agent.telegramAllowFrom).toEqual(full);
  });

  it('approves through the agent id in capitals: the event and the audit row name the agent as stored', async () => {
    const { id: customerId, apiKey } = await harness.createCustomer({ plan: 'pro' });
    const agentId = await harness.createAgent(apiKey);
    const pairing = await requestPairing(harness.services.db, {
      agentId,
      telegramUserId: 77,
      chatId: 77,
      now: new Date(),
    });
    if (pairing.status !== 'created') throw new Error('expected a code');
    const approved = await harness.call(
      'POST',
      `/api/v1/agents/${agentId.toUpperCase()}/pairing-requests/${pairing.code}/approve`,
      { key: apiKey },
    );
    expect(approved.status).toBe(200);
    const event = sent.filter((e) => e.name === PAIRING_APPROVED).at(-1);
    expect(event?.data).toMatchObject({ agentId });
    const audit = await json<{ entries: { action: string; details: Record<string, unknown> }[] }>(
      await harness.call('GET', `/api/v1/admin/audit-log?customerId=${customerId}`),
    );
    const entry = audit.entries.find((e) => e.action.startsWith('pairing.'));
    expect(JSON.stringify(entry)).not.toContain(agentId.toUpperCase());
    expect(JSON.stringify(entry)).toContain(agentId);
  });

  it('a PATCH with the ETag read before an approval is refused (412), so the approved sender stays', async () => {
    const { apiKey } = await harness.createCustomer({ plan: 'pro' });
    const agentId = await harness.createAgent(apiKey, { telegramAllowFrom: ['111111'] });
    const read = await harness.call('GET', `/api/v1/agents/${agentId}`, { key: apiKey });
    const etag = read.headers.get('etag') as string;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);

    const pairing = await requestPairing(harness.services.db, {
      agentId,
      telegramUserId: 222222,
      chatId: 222222,
      now: new Date(),
    });
    if (pairing.status !== 'created') throw new Error('expected a code');
    const approve = `/api/v1/agents/${agentId}/pairing-requests/${pairing.code}/approve`;
    expect((await harness.call('POST', approve, { key: apiKey })).status).toBe(200);

    // The client edits the list it read, unaware of the approval.
    const stale = await harness.call('PATCH', `/api/v1/agents/${agentId}`, {
      key: apiKey,
      body: { telegramAllowFrom: ['111111', '333333'] },
      headers: { 'if-match': etag },
    });
    expect(stale.status).toBe(412);
    const refused = await json<ErrorBody>(stale);
    expect(refused.error.code).toBe('precondition_failed');
    const now = await harness.call('GET', `/api/v1/agents/${agentId}`, { key: apiKey });
    const fresh = now.headers.get('etag') as string;
    expect(fresh).not.toBe(etag);
    expect(refused.error.details).toEqual({ etag: fresh });
    expect((await json<{ agent: { telegramAllowFrom: string[] } }>(now)).agent.telegramAllowFrom).toEqual([
      '111111',
      '222222',
    ]);

    // Re-read, re-applied: accepted, with the new ETag; '*' and no If-Match at all are accepted too.
    const retried = await harness.call('PATCH', `/api/v1/agents/${agentId}`, {
      key: apiKey,
      body: { telegramAllowFrom: ['111111', '222222', '333333'] },
      headers: { 'if-match': `"other", ${fresh}` },
    });
    expect(retried.status).toBe(200);
    expect(retried.headers.get('etag')).not.toBe(fresh);
    expect(
      (
        await harness.call('PATCH', `/api/v1/agents/${agentId}`, {
          key: apiKey,
          body: { name: 'n2' },
          headers: { 'if-match': '*' },
        })
      ).status,
    ).toBe(200);
    expect(
      (await harness.call('PATCH', `/api/v1/agents/${agentId}`, { key: apiKey, body: { name: 'n3' } }))
        .status,
    ).toBe(200);
    // A weak tag never matches (If-Match compares strongly).
    const current = (await harness.call('GET', `/api/v1/agents/${agentId}`, { key: apiKey })).headers.get(
      'etag',
    );
    const weak = await harness.call('PATCH', `/api/v1/agents/${agentId}`, {
      key: apiKey,
      body: { name: 'n4' },
      headers: { 'if-match': `W/${current}` },
    });
    expect(weak.status).toBe(412);
    const { error } = (await weak.json()) as { error: { message: string; details: { etag: string } } };
    expect(error.message).toContain('weak ETag');
    expect(error.details.etag).toBe(current);
  });

  it('a DELETE with an ETag read before a change is refused (412) and deletes nothing; the current one deletes', async () => {
    const { apiKey } = await harness.createCustomer({ plan: 'pro' });
    const agentId = await harness.createAgent(apiKey);
    const path = `/api/v1/agents/${agentId}`;
    const read = (await harness.call('GET', path, { key: apiKey })).headers.get('etag') as string;
    expect((await harness.call('PATCH', path, { key: apiKey, body: { name: 'renamed' } })).status).toBe(200);
    const stale = await harness.call('DELETE', path, { key: apiKey, headers: { 'if-match': read } });
    expect(stale.status).toBe(412);
    expect((await json<ErrorBody>(stale)).error.code).toBe('precondition_failed');
    const now = await harness.call('GET', path, { key: apiKey });
    expect(now.status).toBe(200);
    const fresh = now.headers.get('etag') as string;
    expect((await harness.call('DELETE', path, { key: apiKey, headers: { 'if-match': fresh } })).status).toBe(
      204,
    );
    expect((await harness.call('GET', path, { key: apiKey })).status).toBe(404);
  });

  it("an agent's ETag does not change when only its status or activity does", async () => {
    const { apiKey } = await harness.createCustomer({ plan: 'pro' });
    const agentId = await harness.createAgent(apiKey);
    const before = (await harness.call('GET', `/api/v1/agents/${agentId}`, { key: apiKey })).headers.get(
      'etag',
    );
    await harness.services.db
      .update(agents)
      .set({ lastMessageAt: new Date(), lastError: 'x' })
      .where(eq(agents.id, agentId));
    const after = (await harness.call('GET', `/api/v1/agents/${agentId}`, { key: apiKey })).headers.get(
      'etag',
    );
    expect(after).toBe(before);
  });
});
