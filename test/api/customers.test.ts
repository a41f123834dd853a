import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { API_KEY_PATTERN, hashApiKey } from '../../lib/api-keys';
import { apiKeys, auditLog } from '../../lib/db/schema';
import { databaseTargets } from '../support/db';
import { json, useApiHarness } from './harness';

interface CustomerBody {
  customer: Record<string, unknown> & { id: string };
  apiKey: string;
}

describe.each(databaseTargets())('admin customers on %s', (target) => {
  const harness = useApiHarness(target);

  it('creates a customer with plan defaults and a key shown once', async () => {
    const res = await harness.call('POST', '/api/v1/admin/customers', {
      body: { name: 'Acme', email: 'ops@acme.example', plan: 'pro', webhookUrl: 'https://acme.example/hook' },
    });
    expect(res.status).toBe(201);
    const body = await json<CustomerBody>(res);
    expect(body.customer).toEqual({
      id: expect.any(String),
      name: 'Acme',
      email: 'ops@acme.example',
      plan: 'pro',
      maxAgents: 5,
      status: 'active',
      webhookUrl: 'https://acme.example/hook',
      limits: { apiRequestsPerHour: null, messagesPerDay: null },
      createdAt: expect.stringMatching(/Z$/),
      updatedAt: expect.stringMatching(/Z$/),
    });
    expect(body.apiKey).toMatch(API_KEY_PATTERN);

    // Only the hash and a display prefix are stored.
    const [stored] = await harness.services.db
      .select()
      .from(apiKeys)
      .where(eq(apiKeys.customerId, body.customer.id));
    expect(stored?.hash).toBe(hashApiKey(body.apiKey));
    expect(stored?.prefix).toBe(body.apiKey.slice(0, 11));
    expect(JSON.stringify(stored)).not.toContain(body.apiKey);

    const again = await json<CustomerBody>(
      await harness.call('GET', `/api/v1/admin/customers/${body.customer.id}`),
    );
    expect(again).toEqual({ customer: body.customer });
    expect(JSON.stringify(again)).not.toContain(body.apiKey);
  });

  it('gives each plan its default maxAgents, and takes an explicit one', async () => {
    for (const [plan, expected] of [
      ['free', 1],
      ['pro', 5],
      ['enterprise', 25],
    ] as const) {
      const body = await json<CustomerBody>(
        await harness.call('POST', '/api/v1/admin/customers', { body: { name: plan, plan } }),
      );
      expect(body.customer.maxAgents).toBe(expected);
    }
    const custom = await json<CustomerBody>(
      await harness.call('POST', '/api/v1/admin/customers', { body: { name: 'x', maxAgents: 0 } }),
    );
    expect(custom.customer.maxAgents).toBe(0);
  });

  it('lists with filters and cursor pagination, newest first', async () => {
    const created: string[] = [];
    for (let index = 0; index < 5; index += 1) {
      created.push((await harness.createCustomer({ name: `page-${index}`, plan: 'enterprise' })).id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pageNo = 0; pageNo < 10; pageNo += 1) {
      const query: string = `plan=enterprise&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = await json<{ customers: { id: string; plan: string }[]; nextCursor: string | null }>(
        await harness.call('GET', `/api/v1/admin/customers?${query}`),
      );
      expect(page.customers.length).toBeLessThanOrEqual(2);
      for (const customer of page.customers) expect(customer.plan).toBe('enterprise');
      seen.push(...page.customers.map((customer) => customer.id));
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    expect(seen.filter((id) => created.includes(id))).toEqual([...created].reverse());
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('filters by status', async () => {
    const customer = await harness.createCustomer({ name: 'to suspend' });
    await harness.call('PATCH', `/api/v1/admin/customers/${customer.id}`, { body: { status: 'suspended' } });
    const page = await json<{ customers: { id: string; status: string }[] }>(
      await harness.call('GET', '/api/v1/admin/customers?status=suspended&limit=100'),
    );
    expect(page.customers.map((c) => c.id)).toContain(customer.id);
    expect(page.customers.every((c) => c.status === 'suspended')).toBe(true);
  });

  it('updates plan, limits, webhook URL and clears it with null', async () => {
    const customer = await harness.createCustomer({ webhookUrl: 'https://a.example/h' });
    const res = await harness.call('PATCH', `/api/v1/admin/customers/${customer.id}`, {
      body: {
        plan: 'enterprise',
        maxAgents: 50,
        limits: { apiRequestsPerHour: 5, messagesPerDay: null },
        webhookUrl: null,
      },
    });
    expect(res.status).toBe(200);
    expect((await json<CustomerBody>(res)).customer).toMatchObject({
      plan: 'enterprise',
      maxAgents: 50,
      limits: { apiRequestsPerHour: 5, messagesPerDay: null },
      webhookUrl: null,
    });
  });

  it("a plan change moves the plan's number of agents with it; one the operator set stays", async () => {
    const patch = async (id: string, body: Record<string, unknown>) =>
      (await json<CustomerBody>(await harness.call('PATCH', `/api/v1/admin/customers/${id}`, { body })))
        .customer;
    const planDefault = await json<CustomerBody>(
      await harness.call('POST', '/api/v1/admin/customers', { body: { name: 'grows', plan: 'free' } }),
    );
    expect(await patch(planDefault.customer.id, { plan: 'enterprise' })).toMatchObject({ maxAgents: 25 });
    expect(await patch(planDefault.customer.id, { plan: 'pro' })).toMatchObject({ maxAgents: 5 });
    const set = await json<CustomerBody>(
      await harness.call('POST', '/api/v1/admin/customers', {
        body: { name: 'set', plan: 'free', maxAgents: 3 },
      }),
    );
    expect(await patch(set.customer.id, { plan: 'enterprise' })).toMatchObject({ maxAgents: 3 });
    expect(await patch(set.customer.id, { plan: 'pro', maxAgents: 7 })).toMatchObject({ maxAgents: 7 });
  });

  it('rotation invalidates the old key at once and shows the new one once', async () => {
    const customer = await harness.createCustomer();
    expect((await harness.call('GET', '/api/v1/agents', { key: customer.apiKey })).status).toBe(200);
    const res = await harness.call('POST', `/api/v1/admin/customers/${customer.id}/rotate-key`);
    expect(res.status).toBe(200);
    const { apiKey } = await json<CustomerBody>(res);
    expect(apiKey).toMatch(API_KEY_PATTERN);
    expect(apiKey).not.toBe(customer.apiKey);
    expect((await harness.call('GET', '/api/v1/agents', { key: customer.apiKey })).status).toBe(401);
    expect((await harness.call('GET', '/api/v1/agents', { key: apiKey })).status).toBe(200);
  });

  it('deletes a customer with its agents; its key stops working', async () => {
    const customer = await harness.createCustomer({ plan: 'pro' });
    await harness.createAgent(customer.apiKey);
    expect((await harness.call('DELETE', `/api/v1/admin/customers/${customer.id}`)).status).toBe(204);
    expect((await harness.call('GET', `/api/v1/admin/customers/${customer.id}`)).status).toBe(404);
    expect((await harness.call('GET', '/api/v1/agents', { key: customer.apiKey })).status).toBe(401);
    expect((await harness.call('DELETE', `/api/v1/admin/customers/${customer.id}`)).status).toBe(404);
  });

  it('a PATCH or DELETE with an ETag read before a change is a 412 that changes nothing', async () => {
    const created = await harness.call('POST', '/api/v1/admin/customers', { body: { name: 'Tagged' } });
    const customer = await json<CustomerBody>(created);
    const path = `/api/v1/admin/customers/${customer.customer.id}`;
    const read = await harness.call('GET', path);
    const etag = read.headers.get('etag');
    expect(etag).toMatch(/^"[\w-]{27}"$/);
    expect(created.headers.get('etag')).toBe(etag);
    // The customer sets its webhook URL meanwhile: the operator's read is stale.
    const put = await harness.call('PUT', '/api/v1/webhook', {
      key: customer.apiKey,
      body: { url: 'https://hooks.example.com/in' },
    });
    expect(put.status).toBe(200);
    const stale = await harness.call('PATCH', path, {
      body: { status: 'suspended' },
      headers: { 'if-match': etag as string },
    });
    expect(stale.status).toBe(412);
    const current = await harness.call('GET', path);
    expect((await json<CustomerBody>(current)).customer).toMatchObject({
      status: 'active',
      webhookUrl: 'https://hooks.example.com/in',
    });
    const fresh = current.headers.get('etag') as string;
    expect(fresh).not.toBe(etag);
    expect((await harness.call('DELETE', path, { headers: { 'if-match': etag as string } })).status).toBe(
      412,
    );
    expect((await harness.call('GET', path)).status).toBe(200);
    expect((await harness.call('GET', '/api/v1/agents', { key: customer.apiKey })).status).toBe(200);

    const patched = await harness.call('PATCH', path, {
      body: { plan: 'pro' },
      headers: { 'if-match': fresh },
    });
    expect(patched.status).toBe(200);
    const next = patched.headers.get('etag') as string;
    expect(next).not.toBe(fresh);
    expect((await harness.call('GET', path)).headers.get('etag')).toBe(next);
    expect((await harness.call('DELETE', path, { headers: { 'if-match': `"other", ${next}` } })).status).toBe(
      204,
    );
  });

  it('writes one audit row per mutation, with the request id and no secret', async () => {
    const res = await harness.call('POST', '/api/v1/admin/customers', {
      body: { name: 'Audited' },
      headers: { 'x-request-id': 'audit-req-1', 'x-forwarded-for': '203.0.113.9, 10.0.0.1' },
    });
    const { customer, apiKey } = await json<CustomerBody>(res);
    const rows = await harness.services.db
      .select()
      .from(auditLog)
      .where(eq(auditLog.requestId, 'audit-req-1'));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      actorType: 'admin',
      actorId: 'admin',
      action: 'customer.create',
      targetType: 'customer',
      targetId: customer.id,
      customerId: customer.id,
      ip: '10.0.0.1',
      outcome: 'success',
    });
    expect(JSON.stringify(rows)).not.toContain(apiKey);

    const log = await json<{ entries: { action: string; target: { id: string } }[] }>(
      await harness.call('GET', `/api/v1/admin/audit-log?customerId=${customer.id}`),
    );
    expect(log.entries.map((entry) => entry.action)).toEqual(['customer.create']);

    // The customer reads the same entry without the operator's address; its own keep theirs.
    await harness.call('POST', '/api/v1/agents', {
      key: apiKey,
      body: { name: 'mine' },
      headers: { 'x-forwarded-for': '198.51.100.4' },
    });
    const own = await json<{ entries: { action: string; actor: { type: string }; ip: string | null }[] }>(
      await harness.call('GET', '/api/v1/audit-log', { key: apiKey }),
    );
    expect(own.entries.map(({ action, actor, ip }) => [action, actor.type, ip])).toEqual([
      ['agent.create', 'customer', '198.51.100.4'],
      ['customer.create', 'admin', null],
    ]);
  });

  it('an id typed in capitals is the same customer, and its audit rows name it as stored', async () => {
    const { customer } = await json<CustomerBody>(
      await harness.call('POST', '/api/v1/admin/customers', { body: { name: 'Caps' } }),
    );
    const upper = customer.id.toUpperCase();
    expect(
      (await harness.call('PATCH', `/api/v1/admin/customers/${upper}`, { body: { name: 'Caps 2' } })).status,
    ).toBe(200);
    expect((await harness.call('POST', `/api/v1/admin/customers/${upper}/rotate-key`)).status).toBe(200);
    const rows = await harness.services.db
      .select()
      .from(auditLog)
      .where(eq(auditLog.customerId, customer.id));
    expect(rows.map((row) => [row.action, row.targetId])).toEqual([
      ['customer.create', customer.id],
      ['customer.update', customer.id],
      ['customer.rotate_key', customer.id],
    ]);
  });

  it.each([
    [{}, 'validation_error', 'body.name'],
    [{ name: '' }, 'validation_error', 'body.name'],
    [{ name: 'x', plan: 'gold' }, 'validation_error', 'body.plan'],
    [{ name: 'x', maxAgents: -1 }, 'validation_error', 'body.maxAgents'],
    [{ name: 'x', maxAgents: 1.5 }, 'validation_error', 'body.maxAgents'],
    [{ name: 'x', email: 'not-an-email' }, 'validation_error', 'body.email'],
    [{ name: 'x', webhookUrl: 'ftp://a.example' }, 'validation_error', 'body.webhookUrl'],
    [{ name: 'x', limits: { apiRequestsPerHour: 0 } }, 'validation_error', 'body.limits.apiRequestsPerHour'],
    [{ name: 'x', status: 'active' }, 'unknown_field', 'status'],
    [{ name: 'x', apiKey: 'oc_mine' }, 'unknown_field', 'apiKey'],
  ])('rejects create body %j', async (body, code, field) => {
    const res = await harness.call('POST', '/api/v1/admin/customers', { body });
    expect(res.status).toBe(400);
    const error = (await json<{ error: { code: string; message: string } }>(res)).error;
    expect(error.code).toBe(code);
    expect(error.message).toContain(field);
  });

  it('a PATCH of limits with neither limit in it is a 400, and changes nothing', async () => {
    const customer = await harness.createCustomer();
    const res = await harness.call('PATCH', `/api/v1/admin/customers/${customer.id}`, {
      body: { limits: {} },
    });
    expect(res.status).toBe(400);
    expect((await json<{ error: { code: string; message: string } }>(res)).error).toMatchObject({
      code: 'validation_error',
      message: expect.stringContaining('body.limits'),
    });
  });

  it('rejects a bad cursor and a bad filter with 400 naming the parameter', async () => {
    const bad = await json<{ error: { code: string; message: string } }>(
      await harness.call('GET', '/api/v1/admin/customers?cursor=garbage'),
    );
    expect(bad.error).toMatchObject({
      code: 'validation_error',
      message: expect.stringContaining('query.cursor'),
    });
    const res = await harness.call('GET', '/api/v1/admin/customers?limit=1000');
    expect(res.status).toBe(400);
    expect((await json<{ error: { message: string } }>(res)).error.message).toContain('query.limit');
  });

  it('refuses an id of thousands of characters with a 400 naming it, without echoing it back', async () => {
    const id = 'x'.repeat(5000);
    for (const [method, path] of [
      ['GET', `/api/v1/admin/customers/${id}`],
      ['PATCH', `/api/v1/admin/customers/${id}`],
      ['GET', `/api/v1/admin/runs/${id}`],
    ] as const) {
      const res = await harness.call(method, path, method === 'PATCH' ? { body: { name: 'x' } } : {});
      expect(res.status, path).toBe(400);
      const text = await res.text();
      expect(text.length, path).toBeLessThan(1000);
      expect(JSON.parse(text).error).toMatchObject({
        code: 'validation_error',
        message: expect.stringContaining('param.id'),
      });
    }
  });

  it('answers 404 for an unknown or malformed id', async () => {
    for (const id of ['00000000-0000-4000-8000-000000000000', 'nope']) {
      const res = await harness.call('GET', `/api/v1/admin/customers/${id}`);
      expect(res.status).toBe(404);
      expect((await json<{ error: { code: string } }>(res)).error.code).toBe('customer_not_found');
    }
  });
});
