import { inArray, sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { agents } from '../../lib/db/schema';
import type { ErrorBody } from '../../lib/errors';
import { databaseTargets } from '../support/db';
import { json, useApiHarness } from './harness';

interface AgentPage {
  agents: { id: string }[];
  nextCursor: string | null;
}

const cursorOf = (text: string) => Buffer.from(text).toString('base64url');

describe.each(databaseTargets())('keyset pagination on %s', (target) => {
  const harness = useApiHarness(target);

  /** Five agents created within one millisecond, as PostgreSQL's now() stores them: microseconds apart. */
  const agentsInOneMillisecond = async (apiKey: string) => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) ids.push(await harness.createAgent(apiKey, { name: `a${i}` }));
    for (const [i, id] of ids.entries()) {
      await harness.services.db
        .update(agents)
        .set({ createdAt: sql.raw(`'2026-11-30 12:00:00.123${100 + i * 200}+00'::timestamptz`) })
        .where(inArray(agents.id, [id]));
    }
    return ids.reverse(); // newest first
  };

  const pageThrough = async (apiKey: string, limit: number, between?: (page: AgentPage) => Promise<void>) => {
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 20; pages += 1) {
      const query: string = cursor ? `&cursor=${cursor}` : '';
      const res = await harness.call('GET', `/api/v1/agents?limit=${limit}${query}`, { key: apiKey });
      expect(res.status).toBe(200);
      const page = await json<AgentPage>(res);
      seen.push(...page.agents.map((agent) => agent.id));
      if (!page.nextCursor) return seen;
      await between?.(page);
      cursor = page.nextCursor;
    }
    throw new Error('more than 20 pages');
  };

  it('every list refuses a limit that is not one whole number from 1 to 100, and an empty cursor, naming them', async () => {
    const { apiKey } = await harness.createCustomer();
    const agentId = await harness.createAgent(apiKey);
    const lists: [string, string | undefined][] = [
      ['/api/v1/agents', apiKey],
      ['/api/v1/audit-log', apiKey],
      ['/api/v1/webhook/deliveries', apiKey],
      [`/api/v1/agents/${agentId}/pairing-requests`, apiKey],
      ['/api/v1/admin/customers', undefined],
      ['/api/v1/admin/audit-log', undefined],
      ['/api/v1/admin/runs', undefined],
      ['/api/v1/admin/events', undefined],
    ];
    for (const [path, key] of lists) {
      for (const [query, field] of [
        ['limit=0x10', 'query.limit'],
        ['limit=1e1', 'query.limit'],
        ['limit=%205', 'query.limit'],
        ['limit=', 'query.limit'],
        ['limit=2.0', 'query.limit'],
        ['limit=1&limit=2', 'query.limit'],
        ['limit=0', 'query.limit'],
        ['limit=101', 'query.limit'],
        ['limit=99999999999999999999', 'query.limit'],
        ['cursor=', 'query.cursor'],
      ]) {
        const res = await harness.call('GET', `${path}?${query}`, { key });
        const label = `${path}?${query}`;
        expect(res.status, label).toBe(400);
        const body = await json<ErrorBody>(res);
        expect(body.error.code, label).toBe('validation_error');
        expect(body.error.details?.issues?.[0]?.field, label).toBe(field);
      }
      // A misspelt filter would otherwise list everything, as if it had matched.
      const typo = await harness.call('GET', `${path}?stauts=running`, { key });
      expect(typo.status, path).toBe(400);
      expect((await json<ErrorBody>(typo)).error, path).toMatchObject({
        code: 'unknown_field',
        message: 'Unknown field: stauts',
      });
      for (const query of ['limit=7', 'limit=100', 'limit=1']) {
        expect((await harness.call('GET', `${path}?${query}`, { key })).status, `${path}?${query}`).toBe(200);
      }
    }
  });

  it('returns every row once when rows share a millisecond, whatever the page size', async () => {
    const { apiKey } = await harness.createCustomer({ plan: 'pro' });
    const newestFirst = await agentsInOneMillisecond(apiKey);
    for (const limit of [1, 2, 3]) expect(await pageThrough(apiKey, limit)).toEqual(newestFirst);
  });

  it('skips nothing when the row a cursor points at is deleted before the next page', async () => {
    const { apiKey } = await harness.createCustomer({ plan: 'pro' });
    const newestFirst = await agentsInOneMillisecond(apiKey);
    const seen = await pageThrough(apiKey, 2, async (page) => {
      const last = page.agents.at(-1)?.id as string;
      expect((await harness.call('DELETE', `/api/v1/agents/${last}`, { key: apiKey })).status).toBe(204);
    });
    for (const id of newestFirst) expect(seen).toContain(id);
  });

  it.each([
    ['year 0', '0000-01-01T00:00:00.000Z'],
    ['year +275760', '+275760-09-13T00:00:00.000Z'],
    ['a date without time', '2026-11-30'],
  ])('a cursor with %s is a 400 naming query.cursor, not a 500', async (_name, at) => {
    const { apiKey } = await harness.createCustomer();
    const cursor = cursorOf(`${at}|00000000-0000-4000-8000-000000000000`);
    for (const path of ['/api/v1/agents', '/api/v1/audit-log', '/api/v1/webhook/deliveries']) {
      const res = await harness.call('GET', `${path}?cursor=${cursor}`, { key: apiKey });
      expect(res.status, path).toBe(400);
      const { error } = await json<ErrorBody>(res);
      expect(error.code).toBe('validation_error');
      expect(error.details?.issues?.[0]?.field).toBe('query.cursor');
    }
  });
});
