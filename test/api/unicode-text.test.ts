import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { agents, auditLog, customers } from '../../lib/db/schema';
import type { ErrorBody } from '../../lib/errors';
import { LONE_SURROGATE_MESSAGE } from '../../lib/json-faults';
import { databaseTargets } from '../support/db';
import { TEST_ADMIN_KEY } from '../support/services';
import { json, useApiHarness } from './harness';

async function expectLoneSurrogateError(res: Response, field: string) {
  expect(res.status, field).toBe(400);
  expect((await json<ErrorBody>(res)).error, field).toMatchObject({
    code: 'validation_error',
    message: `${field}: ${LONE_SURROGATE_MESSAGE}`,
    details: { issues: [{ field, message: LONE_SURROGATE_MESSAGE }] },
  });
}

describe.each(databaseTargets())('text that is not well-formed Unicode on %s', (target) => {
  const h = useApiHarness(target);

  const auditCount = async (customerId: string) =>
    (await h.services.db.select().from(auditLog).where(eq(auditLog.customerId, customerId))).length;

  it('a lone surrogate (a JSON \\ud800 escape without its pair) is a 400 naming the field, and nothing is stored', async () => {
    const { id: customerId, apiKey } = await h.createCustomer();
    const agentId = await h.createAgent(apiKey, { name: 'Before', systemPrompt: 'Be kind.' });
    const auditBefore = await auditCount(customerId);

    // JSON.stringify writes a lone surrogate as the escape itself, as a client's JSON would.
    await expectLoneSurrogateError(
      await h.call('POST', '/api/v1/agents', { key: apiKey, body: '{"name":"a\\ud800b"}' }),
      'body.name',
    );
    await expectLoneSurrogateError(
      await h.call('PATCH', `/api/v1/agents/${agentId}`, {
        key: apiKey,
        body: { name: 'After', systemPrompt: 'tail \udc00' },
      }),
      'body.systemPrompt',
    );
    const mine = await h.services.db.select().from(agents).where(eq(agents.customerId, customerId));
    expect(mine.map((agent) => [agent.id, agent.name, agent.systemPrompt])).toEqual([
      [agentId, 'Before', 'Be kind.'],
    ]);
    expect(await auditCount(customerId)).toBe(auditBefore);

    const countBefore = (await h.services.db.select().from(customers)).length;
    await expectLoneSurrogateError(
      await h.call('POST', '/api/v1/admin/customers', { body: { name: 'Acme \ud83d' } }),
      'body.name',
    );
    expect((await h.services.db.select().from(customers)).length).toBe(countBefore);
  });

  it('a surrogate pair (an emoji, escaped or not) is stored as sent', async () => {
    const { apiKey } = await h.createCustomer();
    const res = await h.call('POST', '/api/v1/agents', {
      key: apiKey,
      body: '{"name":"Bot \\ud83d\\ude00 😀"}',
    });
    expect(res.status).toBe(201);
    expect((await json<{ agent: { name: string } }>(res)).agent.name).toBe('Bot 😀 😀');
  });

  it('a body whose bytes are not UTF-8 is a 400, not text with U+FFFD stored in place of them', async () => {
    const countBefore = (await h.services.db.select().from(customers)).length;
    for (const bytes of [
      [0xff], // never in UTF-8
      [0xc3], // a sequence cut short
      [0xed, 0xa0, 0x80], // a surrogate encoded as if it were a character
      [0xc0, 0xaf], // an overlong '/'
    ]) {
      const body = new Uint8Array([
        ...new TextEncoder().encode('{"name":"a'),
        ...bytes,
        ...new TextEncoder().encode('b"}'),
      ]);
      const res = await h.app.request('/api/v1/admin/customers', {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
        body,
      });
      expect(res.status, String(bytes)).toBe(400);
      expect((await json<ErrorBody>(res)).error, String(bytes)).toMatchObject({
        code: 'invalid_json',
        message: 'The request body is not valid UTF-8, so it is not valid JSON',
      });
    }
    expect((await h.services.db.select().from(customers)).length).toBe(countBefore);

    const accepted = await h.app.request('/api/v1/admin/customers', {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
      body: new TextEncoder().encode('{"name":"Café 東京"}'),
    });
    expect(accepted.status).toBe(201);
    expect((await json<{ customer: { name: string } }>(accepted)).customer.name).toBe('Café 東京');
  });
});
