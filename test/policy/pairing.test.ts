import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../lib/db/client';
import { agents, pairingRequests } from '../../lib/db/schema';
import {
  approvePairing,
  expirePairingRequests,
  generatePairingCode,
  listPairingRequests,
  normalisePairingCode,
  PAIRING_CODE_ALPHABET,
  pairingCodeMessage,
  pairingDecisionError,
  rejectPairing,
  requestPairing,
} from '../../lib/pairing';
import { decideAccess } from '../../lib/policy/access';
import { createTestDatabase, databaseTargets, type TestDatabase } from '../support/db';
import { createAgent, loadAgent } from './fixtures';

const T0 = new Date('2026-03-01T10:00:00.000Z');
const minutes = (n: number) => new Date(T0.getTime() + n * 60_000);
const CODE = /^[A-HJ-NP-Z2-9]{8}$/;

function sender(id: number, now = T0) {
  return { telegramUserId: id, username: `user${id}`, firstName: `User ${id}`, chatId: id, now };
}

describe('pairing codes', () => {
  it('are 8 symbols of the unambiguous alphabet, and every symbol occurs', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const code = generatePairingCode();
      expect(code).toMatch(CODE);
      for (const char of code) seen.add(char);
    }
    expect(PAIRING_CODE_ALPHABET).toHaveLength(32);
    expect([...seen].sort().join('')).toBe([...PAIRING_CODE_ALPHABET].sort().join(''));
    for (const ambiguous of ['I', 'O', '0', '1']) expect(seen.has(ambiguous)).toBe(false);
  });

  it.each([
    ['abcd2345', 'ABCD2345'],
    [' AbCd-2345 ', 'ABCD2345'],
    ['abcd 2345', 'ABCD2345'],
    ['ABCD234', null],
    ['ABCD23456', null],
    ['ABCD2341', null],
    ['ABCDO345', null],
    ['', null],
  ])('normalisePairingCode(%j) is %j', (input, expected) => {
    expect(normalisePairingCode(input)).toBe(expected);
  });

  it('are told to the sender with their id and the minutes left', () => {
    const text = pairingCodeMessage({
      agentName: 'Ada',
      code: 'ABCD2345',
      telegramUserId: 42,
      expiresAt: minutes(60),
      now: T0,
    });
    expect(text).toContain('ABCD2345');
    expect(text).toContain('42');
    expect(text).toContain('60 minutes');
  });
});

describe.each(databaseTargets())('pairing requests on %s', (target) => {
  let database: TestDatabase;
  let db: Database;
  beforeAll(async () => {
    database = await createTestDatabase(target);
    db = database.handle.db;
  });
  afterAll(async () => {
    await database?.destroy();
  });

  it('gives an unknown sender a code valid for one hour, and the same code when they ask again', async () => {
    const agent = await createAgent(db);
    const first = await requestPairing(db, { agentId: agent.id, ...sender(1) });
    expect(first).toMatchObject({ status: 'created', expiresAt: minutes(60) });
    if (first.status !== 'created') throw new Error('expected a code');
    expect(first.code).toMatch(CODE);
    expect(first.request).toMatchObject({
      agentId: agent.id,
      telegramUserId: 1,
      username: 'user1',
      firstName: 'User 1',
      chatId: 1,
      status: 'pending',
    });

    const again = await requestPairing(db, { agentId: agent.id, ...sender(1, minutes(30)) });
    expect(again).toMatchObject({ status: 'existing', code: first.code, expiresAt: minutes(60) });
    const rows = await db.select().from(pairingRequests).where(eq(pairingRequests.agentId, agent.id));
    expect(rows).toHaveLength(1);
  });

  it('holds at most 3 pending codes per agent until one expires', async () => {
    const agent = await createAgent(db);
    const other = await createAgent(db);
    for (const id of [1, 2, 3]) {
      expect(await requestPairing(db, { agentId: agent.id, ...sender(id) })).toMatchObject({
        status: 'created',
      });
    }
    expect(await requestPairing(db, { agentId: agent.id, ...sender(4, minutes(59)) })).toEqual({
      status: 'limit_reached',
    });
    // A pending sender still gets their code back while the agent is full; another agent is unaffected.
    expect(await requestPairing(db, { agentId: agent.id, ...sender(2, minutes(59)) })).toMatchObject({
      status: 'existing',
    });
    expect(await requestPairing(db, { agentId: other.id, ...sender(4) })).toMatchObject({
      status: 'created',
    });

    // At the hour the three are expired, lazily, and the fourth sender gets a code.
    const fourth = await requestPairing(db, { agentId: agent.id, ...sender(4, minutes(60)) });
    expect(fourth).toMatchObject({ status: 'created', expiresAt: minutes(120) });
    const rows = await db.select().from(pairingRequests).where(eq(pairingRequests.agentId, agent.id));
    expect(rows.map((row) => [row.telegramUserId, row.status]).sort()).toEqual([
      [1, 'expired'],
      [2, 'expired'],
      [3, 'expired'],
      [4, 'pending'],
    ]);
    expect(rows.find((row) => row.telegramUserId === 1)?.decidedAt).toEqual(minutes(60));
  });

  it('does not count the pending codes of senders allow-listed since, by id or username', async () => {
    const agent = await createAgent(db);
    for (const id of [1, 2, 3]) await requestPairing(db, { agentId: agent.id, ...sender(id) });
    expect(await requestPairing(db, { agentId: agent.id, ...sender(4, minutes(1)) })).toEqual({
      status: 'limit_reached',
    });
    // The customer adds two of the three to the allowlist through the agent's settings, not by approving.
    await db
      .update(agents)
      .set({ telegramAllowFrom: ['2', '@User3'] })
      .where(eq(agents.id, agent.id));
    expect(await requestPairing(db, { agentId: agent.id, ...sender(4, minutes(2)) })).toMatchObject({
      status: 'created',
    });
    expect(await requestPairing(db, { agentId: agent.id, ...sender(5, minutes(2)) })).toMatchObject({
      status: 'created',
    });
    // Senders 1, 4 and 5 wait: the limit holds again.
    expect(await requestPairing(db, { agentId: agent.id, ...sender(6, minutes(3)) })).toEqual({
      status: 'limit_reached',
    });
  });

  it('gives a sender whose code expired a new code', async () => {
    const agent = await createAgent(db);
    const first = await requestPairing(db, { agentId: agent.id, ...sender(7) });
    const second = await requestPairing(db, { agentId: agent.id, ...sender(7, minutes(61)) });
    expect(second.status).toBe('created');
    if (first.status !== 'created' || second.status !== 'created') throw new Error('expected codes');
    expect(second.code).not.toBe(first.code);
    expect(second.expiresAt).toEqual(minutes(121));
  });

  it('tries another code when the drawn one is taken for the agent', async () => {
    const agent = await createAgent(db);
    const other = await createAgent(db);
    const draws = ['AAAAAAAA', 'AAAAAAAA', 'BBBBBBBB'];
    const generateCode = () => draws.shift() ?? 'CCCCCCCC';
    await requestPairing(db, { agentId: agent.id, ...sender(1), generateCode });
    // The same code on another agent is fine: codes are unique per agent.
    expect(
      await requestPairing(db, { agentId: other.id, ...sender(1), generateCode: () => 'AAAAAAAA' }),
    ).toMatchObject({ status: 'created', code: 'AAAAAAAA' });
    const second = await requestPairing(db, { agentId: agent.id, ...sender(2), generateCode });
    expect(second).toMatchObject({ status: 'created', code: 'BBBBBBBB' });
    // An expired code stays taken: an old code never comes back to mean someone else.
    await expect(
      requestPairing(db, { agentId: agent.id, ...sender(3), generateCode: () => 'AAAAAAAA' }),
    ).rejects.toThrow(/no free pairing code/);
    const rows = await db.select().from(pairingRequests).where(eq(pairingRequests.agentId, agent.id));
    expect(rows).toHaveLength(2);
  });

  it('refuses an unknown agent', async () => {
    await expect(
      requestPairing(db, { agentId: '00000000-0000-4000-8000-000000000000', ...sender(1) }),
    ).rejects.toMatchObject({ code: 'agent_not_found' });
  });

  it('approves a code typed in any case: the sender id joins allowFrom once and DMs are answered', async () => {
    const agent = await createAgent(db, { telegramAllowFrom: ['@someone'] });
    const created = await requestPairing(db, { agentId: agent.id, ...sender(4242) });
    if (created.status !== 'created') throw new Error('expected a code');
    const unknown = {
      chatType: 'private',
      senderId: 4242,
      senderUsername: 'user4242',
      addressedToBot: false,
    } as const;
    expect(decideAccess(agent, unknown)).toEqual({ action: 'pairing' });

    const typed = `${created.code.slice(0, 4).toLowerCase()}-${created.code.slice(4)}`;
    const result = await approvePairing(db, { agentId: agent.id, code: typed, now: minutes(5) });
    expect(result).toMatchObject({
      status: 'approved',
      request: { id: created.request.id, status: 'approved', decidedAt: minutes(5), chatId: 4242 },
    });
    expect(pairingDecisionError(result)).toBeNull();
    const approved = await loadAgent(db, agent.id);
    expect(approved.telegramAllowFrom).toEqual(['@someone', '4242']);
    expect(decideAccess(approved, unknown)).toEqual({ action: 'reply' });

    // Deciding again is a 404-style result, and allowFrom is not touched.
    const again = await approvePairing(db, { agentId: agent.id, code: created.code, now: minutes(6) });
    expect(again).toMatchObject({ status: 'already_decided', request: { status: 'approved' } });
    expect(pairingDecisionError(again)).toMatchObject({
      code: 'pairing_request_not_found',
      status: 404,
      details: { status: 'approved' },
    });
    expect(await rejectPairing(db, { agentId: agent.id, code: created.code, now: minutes(6) })).toMatchObject(
      {
        status: 'already_decided',
      },
    );
    expect((await loadAgent(db, agent.id)).telegramAllowFrom).toEqual(['@someone', '4242']);
  });

  it('does not add an id that allowFrom already holds', async () => {
    const agent = await createAgent(db, { telegramAllowFrom: ['tg:0077'] });
    const created = await requestPairing(db, { agentId: agent.id, ...sender(77) });
    if (created.status !== 'created') throw new Error('expected a code');
    await approvePairing(db, { agentId: agent.id, code: created.code, now: minutes(1) });
    expect((await loadAgent(db, agent.id)).telegramAllowFrom).toEqual(['tg:0077']);
  });

  it('rejects a code: allowFrom unchanged, and the sender may ask again', async () => {
    const agent = await createAgent(db);
    const created = await requestPairing(db, { agentId: agent.id, ...sender(5) });
    if (created.status !== 'created') throw new Error('expected a code');
    const result = await rejectPairing(db, { agentId: agent.id, code: created.code, now: minutes(2) });
    expect(result).toMatchObject({
      status: 'rejected',
      request: { status: 'rejected', decidedAt: minutes(2) },
    });
    expect((await loadAgent(db, agent.id)).telegramAllowFrom).toEqual([]);
    const next = await requestPairing(db, { agentId: agent.id, ...sender(5, minutes(3)) });
    expect(next.status).toBe('created');
  });

  it("answers not_found for unknown, malformed and other agents' codes", async () => {
    const agent = await createAgent(db);
    const other = await createAgent(db);
    const created = await requestPairing(db, { agentId: other.id, ...sender(9) });
    if (created.status !== 'created') throw new Error('expected a code');
    for (const code of [created.code, 'ZZZZZZZZ', 'not a code', '']) {
      const result = await approvePairing(db, { agentId: agent.id, code, now: minutes(1) });
      expect(result).toEqual({ status: 'not_found' });
      expect(pairingDecisionError(result)).toMatchObject({ code: 'pairing_request_not_found', status: 404 });
    }
    // The other agent's request is untouched.
    const [row] = await db.select().from(pairingRequests).where(eq(pairingRequests.id, created.request.id));
    expect(row?.status).toBe('pending');
  });

  it('answers expired for a code past its hour, and marks it expired', async () => {
    const agent = await createAgent(db);
    const created = await requestPairing(db, { agentId: agent.id, ...sender(6) });
    if (created.status !== 'created') throw new Error('expected a code');
    const result = await approvePairing(db, { agentId: agent.id, code: created.code, now: minutes(60) });
    expect(result).toMatchObject({
      status: 'expired',
      request: { status: 'expired', decidedAt: minutes(60) },
    });
    expect(pairingDecisionError(result)).toMatchObject({ code: 'pairing_request_not_found', status: 404 });
    expect((await loadAgent(db, agent.id)).telegramAllowFrom).toEqual([]);
    expect(
      await rejectPairing(db, { agentId: agent.id, code: created.code, now: minutes(61) }),
    ).toMatchObject({
      status: 'already_decided',
      request: { status: 'expired' },
    });
  });

  it('expires pending requests past their hour for the cron, and only those', async () => {
    const a = await createAgent(db);
    const b = await createAgent(db);
    await requestPairing(db, { agentId: a.id, ...sender(1, T0) });
    await requestPairing(db, { agentId: b.id, ...sender(2, minutes(10)) });
    const approvedLater = await requestPairing(db, { agentId: b.id, ...sender(3, T0) });
    if (approvedLater.status !== 'created') throw new Error('expected a code');
    await approvePairing(db, { agentId: b.id, code: approvedLater.code, now: minutes(1) });

    expect(await expirePairingRequests(db, minutes(59))).toBe(0);
    expect(await expirePairingRequests(db, minutes(60))).toBeGreaterThanOrEqual(1);
    const statuses = async (agentId: string) =>
      (await db.select().from(pairingRequests).where(eq(pairingRequests.agentId, agentId)))
        .map((row) => [row.telegramUserId, row.status])
        .sort();
    expect(await statuses(a.id)).toEqual([[1, 'expired']]);
    expect(await statuses(b.id)).toEqual([
      [2, 'pending'],
      [3, 'approved'],
    ]);
    expect(await expirePairingRequests(db, minutes(70))).toBeGreaterThanOrEqual(1);
    expect(await statuses(b.id)).toEqual([
      [2, 'expired'],
      [3, 'approved'],
    ]);
  });

  it('lists requests newest first, by status, expiring lazily, a page at a time', async () => {
    const agent = await createAgent(db);
    await requestPairing(db, { agentId: agent.id, ...sender(1, T0) });
    await requestPairing(db, { agentId: agent.id, ...sender(2, minutes(10)) });
    const third = await requestPairing(db, { agentId: agent.id, ...sender(3, minutes(20)) });
    if (third.status !== 'created') throw new Error('expected a code');
    await rejectPairing(db, { agentId: agent.id, code: third.code, now: minutes(21) });

    const all = await listPairingRequests(db, agent.id, { now: minutes(30) });
    expect(all.map((row) => [row.telegramUserId, row.status])).toEqual([
      [3, 'rejected'],
      [2, 'pending'],
      [1, 'pending'],
    ]);
    const pending = await listPairingRequests(db, agent.id, { status: 'pending', now: minutes(65) });
    expect(pending.map((row) => row.telegramUserId)).toEqual([2]);
    const expired = await listPairingRequests(db, agent.id, { status: 'expired', now: minutes(65) });
    expect(expired.map((row) => row.telegramUserId)).toEqual([1]);

    const page1 = await listPairingRequests(db, agent.id, { limit: 2, now: minutes(65) });
    expect(page1.map((row) => row.telegramUserId)).toEqual([3, 2]);
    const last = page1.at(-1)!;
    const page2 = await listPairingRequests(db, agent.id, {
      limit: 2,
      now: minutes(65),
      before: { createdAt: last.createdAt, id: last.id },
    });
    expect(page2.map((row) => row.telegramUserId)).toEqual([1]);
    expect(await listPairingRequests(db, (await createAgent(db)).id)).toEqual([]);
  });

  it('gives one code to 10 simultaneous requests from one sender', async () => {
    const agent = await createAgent(db);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => requestPairing(db, { agentId: agent.id, ...sender(500) })),
    );
    const codes = new Set(results.map((result) => (result.status === 'limit_reached' ? null : result.code)));
    expect(codes.size).toBe(1);
    expect(results.filter((result) => result.status === 'created')).toHaveLength(1);
    expect(results.filter((result) => result.status === 'existing')).toHaveLength(9);
    const rows = await db.select().from(pairingRequests).where(eq(pairingRequests.agentId, agent.id));
    expect(rows).toHaveLength(1);
  });

  it('gives exactly 3 codes to 10 simultaneous senders', async () => {
    const agent = await createAgent(db);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => requestPairing(db, { agentId: agent.id, ...sender(600 + i) })),
    );
    expect(results.filter((result) => result.status === 'created')).toHaveLength(3);
    expect(results.filter((result) => result.status === 'limit_reached')).toHaveLength(7);
    const rows = await db
      .select()
      .from(pairingRequests)
      .where(and(eq(pairingRequests.agentId, agent.id), eq(pairingRequests.status, 'pending')));
    expect(rows).toHaveLength(3);
    expect(new Set(rows.map((row) => row.code)).size).toBe(3);
  });

  it('keeps every approval when codes of one agent are approved at the same time', async () => {
    const agent = await createAgent(db);
    const codes: string[] = [];
    for (const id of [801, 802, 803]) {
      const created = await requestPairing(db, { agentId: agent.id, ...sender(id) });
      if (created.status !== 'created') throw new Error('expected a code');
      codes.push(created.code);
    }
    const results = await Promise.all(
      codes.map((code) => approvePairing(db, { agentId: agent.id, code, now: minutes(1) })),
    );
    expect(results.map((result) => result.status)).toEqual(['approved', 'approved', 'approved']);
    expect([...(await loadAgent(db, agent.id)).telegramAllowFrom].sort()).toEqual(['801', '802', '803']);
  });
});
