import { createRoute, z } from '@hono/zod-openapi';
import { eq, sql } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../api/app';
import { agents, auditLog, customers } from '../../lib/db/schema';
import type { ErrorBody } from '../../lib/errors';
import { findJsonFaults, MAX_JSON_DEPTH, replaceLoneSurrogates } from '../../lib/json-faults';
import { databaseTargets } from '../support/db';
import { json, useApiHarness } from './harness';

const NUL_MESSAGE = 'must not contain the NUL character (U+0000)';

/** The response is the one validation error shape, naming `field` as the first issue. */
async function expectNulError(res: Response, field: string, label = field) {
  expect(res.status, label).toBe(400);
  const body = await json<ErrorBody>(res);
  expect(Object.keys(body), label).toEqual(['error']);
  expect(body.error, label).toEqual({
    code: 'validation_error',
    message: `${field}: ${NUL_MESSAGE}`,
    details: { issues: [{ field, message: NUL_MESSAGE }] },
    requestId: res.headers.get('x-request-id'),
  });
}

describe('findJsonFaults', () => {
  it('finds NULs and lone surrogates in values and keys, nested in objects and arrays, and nothing else', () => {
    expect(
      findJsonFaults({ a: 'ok', b: { c: ['x', 'y\u0000'] }, 'd\u0000': 1, e: 1, f: null, g: 'h\udc00' }),
    ).toEqual([
      { path: ['b', 'c', 1], in: 'value', fault: 'nul' },
      { path: [], in: 'key', fault: 'nul' },
      { path: ['g'], in: 'value', fault: 'lone_surrogate' },
    ]);
    expect(findJsonFaults('\u0000')).toEqual([{ path: [], in: 'value', fault: 'nul' }]);
    expect(findJsonFaults({ '\ud800': 'x' })).toEqual([{ path: [], in: 'key', fault: 'lone_surrogate' }]);
    // A NUL is named before a lone surrogate in the same string.
    expect(findJsonFaults('\ud800\u0000')).toEqual([{ path: [], in: 'value', fault: 'nul' }]);
    // Paired surrogates (an emoji) and other text are well-formed.
    expect(findJsonFaults({ a: 'no nul 😀 \ud83d\ude00 é', b: [1, true, null], c: new Date(0) })).toEqual([]);
    expect(
      findJsonFaults(
        Array.from({ length: 50 }, () => '\u0000'),
        { limit: 3 },
      ),
    ).toHaveLength(3);
  });
});

describe('findJsonFaults on deep nesting', () => {
  const nested = (depth: number, leaf: unknown = 'x'): unknown => {
    let value = leaf;
    for (let level = 0; level < depth; level++) value = level % 2 ? [value] : { a: value };
    return value;
  };

  it('walks as deep as it may and names the first container past that, without exhausting the stack', () => {
    expect(findJsonFaults(nested(MAX_JSON_DEPTH, '\u0000'))).toEqual([
      { path: expect.any(Array), in: 'value', fault: 'nul' },
    ]);
    const [found, ...rest] = findJsonFaults(nested(MAX_JSON_DEPTH + 1));
    expect(rest).toEqual([]);
    expect(found).toMatchObject({ in: 'value', fault: 'too_deep' });
    expect(found?.path).toHaveLength(MAX_JSON_DEPTH);
    // JSON.parse builds far deeper values than a recursive walk (or JSON.stringify) survives.
    const deep = JSON.parse(`${'['.repeat(200_000)}${']'.repeat(200_000)}`);
    expect(findJsonFaults(deep)).toEqual([
      { path: Array(MAX_JSON_DEPTH).fill(0), in: 'value', fault: 'too_deep' },
    ]);
  });

  it('replaceLoneSurrogates puts U+FFFD for each lone surrogate, in values and keys, and keeps pairs', () => {
    expect(replaceLoneSurrogates({ 'k\ud800': ['a\udc00b', '😀', 1, null], n: { m: '\ud83d' } })).toEqual({
      'k\ufffd': ['a\ufffdb', '😀', 1, null],
      n: { m: '\ufffd' },
    });
    expect(findJsonFaults(replaceLoneSurrogates(nested(10, '\ud800')))).toEqual([]);
  });
});

describe.each(databaseTargets())('the NUL character (U+0000) on %s', (target) => {
  const h = useApiHarness(target);

  const auditCount = async (customerId: string) =>
    (await h.services.db.select().from(auditLog).where(eq(auditLog.customerId, customerId))).length;

  it('in a customer route body is a 400 naming the field, and nothing is stored', async () => {
    const { id: customerId, apiKey } = await h.createCustomer({ plan: 'pro' });
    const agentId = await h.createAgent(apiKey, { name: 'Before', systemPrompt: 'Be kind.' });
    const auditBefore = await auditCount(customerId);

    await expectNulError(
      await h.call('POST', '/api/v1/agents', { key: apiKey, body: { name: 'a\u0000b' } }),
      'body.name',
    );
    const mine = await h.services.db.select().from(agents).where(eq(agents.customerId, customerId));
    expect(mine.map((agent) => agent.id)).toEqual([agentId]);

    await expectNulError(
      await h.call('PATCH', `/api/v1/agents/${agentId}`, {
        key: apiKey,
        body: { name: 'After', systemPrompt: 'x\u0000' },
      }),
      'body.systemPrompt',
    );
    const agent = await json<{ agent: { name: string; systemPrompt: string } }>(
      await h.call('GET', `/api/v1/agents/${agentId}`, { key: apiKey }),
    );
    expect(agent.agent).toMatchObject({ name: 'Before', systemPrompt: 'Be kind.' });

    await expectNulError(
      await h.call('PUT', '/api/v1/webhook', { key: apiKey, body: { url: 'https://example.com/\u0000' } }),
      'body.url',
    );
    const settings = await json<{ webhook: { url: string | null } }>(
      await h.call('GET', '/api/v1/webhook', { key: apiKey }),
    );
    expect(settings.webhook.url).toBeNull();

    expect(await auditCount(customerId)).toBe(auditBefore);
  });

  it('in an admin route body is a 400 naming the field, and nothing is stored', async () => {
    const { id: customerId } = await h.createCustomer({ name: 'Original' });
    const countBefore = (await h.services.db.select().from(customers)).length;

    await expectNulError(
      await h.call('POST', '/api/v1/admin/customers', { body: { name: 'a\u0000b' } }),
      'body.name',
    );
    // A nested key holding a NUL is refused too (an unknown field of the strict limits object).
    const nestedKey = await h.call('POST', '/api/v1/admin/customers', {
      body: { name: 'ok', limits: { 'x\u0000': 1 } },
    });
    expect(nestedKey.status).toBe(400);
    expect((await json<ErrorBody>(nestedKey)).error.code).toBe('unknown_field');
    expect((await h.services.db.select().from(customers)).length).toBe(countBefore);

    await expectNulError(
      await h.call('PATCH', `/api/v1/admin/customers/${customerId}`, {
        body: { name: 'a\u0000b', plan: 'pro' },
      }),
      'body.name',
    );
    const [row] = await h.services.db.select().from(customers).where(eq(customers.id, customerId));
    expect(row).toMatchObject({ name: 'Original', plan: 'free' });
  });

  it('in a query parameter is a 400 naming it, on customer and admin routes', async () => {
    const { apiKey } = await h.createCustomer();
    for (const [path, field, key] of [
      ['/api/v1/audit-log?action=%00', 'query.action', apiKey],
      ['/api/v1/audit-log?action=agent.created%00', 'query.action', apiKey],
      ['/api/v1/agents?cursor=%00', 'query.cursor', apiKey],
      ['/api/v1/admin/audit-log?action=%00', 'query.action', undefined],
      ['/api/v1/admin/events?name=%00', 'query.name', undefined],
      ['/api/v1/admin/runs?functionId=x%00y', 'query.functionId', undefined],
      ['/api/v1/admin/customers?cursor=%00', 'query.cursor', undefined],
    ] as const) {
      await expectNulError(await h.call('GET', path, { key }), field, path);
    }
  });

  it('in a path parameter is a 400 naming it, and nothing is deleted', async () => {
    const { id: customerId, apiKey } = await h.createCustomer({ plan: 'pro' });
    const agentId = await h.createAgent(apiKey);

    await expectNulError(await h.call('GET', '/api/v1/agents/%00', { key: apiKey }), 'param.id');
    await expectNulError(await h.call('DELETE', `/api/v1/agents/${agentId}%00`, { key: apiKey }), 'param.id');
    await expectNulError(
      await h.call('POST', `/api/v1/agents/${agentId}/pairing-requests/AB%00CD/approve`, { key: apiKey }),
      'param.code',
    );
    expect(await h.services.db.select().from(agents).where(eq(agents.id, agentId))).toHaveLength(1);

    await expectNulError(await h.call('DELETE', `/api/v1/admin/customers/${customerId}%00`), 'param.id');
    await expectNulError(await h.call('GET', '/api/v1/admin/runs/%00'), 'param.id');
    await expectNulError(await h.call('POST', '/api/v1/admin/events/%00/replay'), 'param.id');
    expect(await h.services.db.select().from(customers).where(eq(customers.id, customerId))).toHaveLength(1);
  });

  it('is still a 401 without a key: validation does not run before authentication', async () => {
    const res = await h.call('POST', '/api/v1/agents', { key: null, body: { name: 'a\u0000b' } });
    expect(res.status).toBe(401);
  });

  describe('on any validated route, and past validation', () => {
    let app: App;
    let handled = 0;
    beforeAll(() => {
      app = createApp(h.services, {
        extend: (extended) => {
          extended.openapi(
            createRoute({
              method: 'post',
              path: '/test/nested/{slug}',
              request: {
                params: z.object({ slug: z.string() }),
                query: z.object({ q: z.string().optional() }),
                body: {
                  required: true,
                  content: {
                    'application/json': {
                      schema: z.object({
                        profile: z.object({
                          tags: z.array(z.string()),
                          meta: z.record(z.string(), z.string()),
                        }),
                      }),
                    },
                  },
                },
              },
              responses: { 200: { description: 'ok' } },
            }),
            (c) => {
              handled += 1;
              return c.json({ ok: true }, 200);
            },
          );
          // A NUL that reaches PostgreSQL anyway (text, then jsonb) is the caller's 400, not a 500.
          extended.get('/test/unvalidated/:kind', async (c) => {
            const value =
              c.req.param('kind') === 'jsonb'
                ? sql`select ${JSON.stringify({ a: '\u0000' })}::jsonb`
                : sql`select ${'a\u0000'}::text`;
            await c.get('services').db.execute(value);
            return c.json({ ok: true }, 200);
          });
        },
      });
    });
    const post = (path: string, body: unknown) =>
      app.request(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });

    it('names nested values, array items and keys, and lists every one', async () => {
      const ok = { profile: { tags: ['a'], meta: { k: 'v' } } };
      expect((await post('/test/nested/s', ok)).status).toBe(200);
      expect(handled).toBe(1);

      await expectNulError(
        await post('/test/nested/s', { profile: { tags: ['a', 'b\u0000'], meta: {} } }),
        'body.profile.tags.1',
      );
      await expectNulError(
        await post('/test/nested/s', { profile: { tags: [], meta: { k: 'v\u0000' } } }),
        'body.profile.meta.k',
      );
      const several = await post('/test/nested/s', {
        profile: { tags: ['\u0000'], meta: { 'k\u0000': 'v', j: '\u0000' } },
      });
      expect(several.status).toBe(400);
      expect((await json<ErrorBody>(several)).error.details?.issues).toEqual([
        { field: 'body.profile.tags.0', message: NUL_MESSAGE },
        { field: 'body.profile.meta', message: `keys ${NUL_MESSAGE}` },
        { field: 'body.profile.meta.j', message: NUL_MESSAGE },
      ]);
      await expectNulError(await post('/test/nested/s%00', ok), 'param.slug');
      await expectNulError(await post('/test/nested/s?q=%00', ok), 'query.q');
      expect(handled).toBe(1);
    });

    it('maps PostgreSQL refusing a NUL (22021 in text, 22P05 in jsonb) to a 400', async () => {
      for (const kind of ['text', 'jsonb']) {
        const res = await app.request(`/test/unvalidated/${kind}`);
        expect(res.status, kind).toBe(400);
        expect((await json<ErrorBody>(res)).error, kind).toMatchObject({
          code: 'validation_error',
          message: `request: ${NUL_MESSAGE}`,
          details: { issues: [{ field: 'request', message: NUL_MESSAGE }] },
        });
      }
    });
  });
});
