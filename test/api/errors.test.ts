import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { ErrorBody } from '../../lib/errors';
import { databaseTargets } from '../support/db';
import { json, useApiHarness } from './harness';

describe.each(databaseTargets())('error responses on %s', (target) => {
  const harness = useApiHarness(target);

  /** A new customer's `POST /api/v1/agents` with `body` sent as `contentType`. */
  async function createAgentAs(contentType: string, body = '{"name":"x"}') {
    const { apiKey } = await harness.createCustomer();
    return harness.call('POST', '/api/v1/agents', {
      key: apiKey,
      body,
      headers: { 'content-type': contentType },
    });
  }

  it.each([
    ['malformed JSON', '{"name": ', 'application/json', 400, 'invalid_json'],
    ['an empty JSON body', '', 'application/json', 400, 'validation_error'],
    ['a JSON array', '[]', 'application/json', 400, 'validation_error'],
    ['text/plain', 'name=x', 'text/plain', 415, 'unsupported_media_type'],
    ['a form', 'name=x', 'application/x-www-form-urlencoded', 415, 'unsupported_media_type'],
    ['JSON in UTF-16', '{"name":"x"}', 'application/json; charset=utf-16', 415, 'unsupported_media_type'],
    [
      'JSON in Latin-1',
      '{"name":"x"}',
      'application/json;charset="iso-8859-1"',
      415,
      'unsupported_media_type',
    ],
    ['a parameter without a value', '{"name":"x"}', 'application/json; foo', 415, 'unsupported_media_type'],
    ['a JSON-like type', '{"name":"x"}', 'application/jsonx', 415, 'unsupported_media_type'],
    [
      'a type over 1 KB',
      '{"name":"x"}',
      `application/json; note="${'a'.repeat(1100)}"`,
      415,
      'unsupported_media_type',
    ],
    ['no type at all', '{"name":"x"}', '', 415, 'unsupported_media_type'],
  ])(
    '%s (body %j, type %j) is a %i %s in the one error shape',
    async (_, body, contentType, status, code) => {
      const res = await createAgentAs(contentType, body);
      expect(res.status).toBe(status);
      const payload = await json<ErrorBody>(res);
      expect(Object.keys(payload)).toEqual(['error']);
      expect(payload.error).toMatchObject({
        code,
        message: expect.any(String),
        requestId: res.headers.get('x-request-id'),
      });
      expect(
        Object.keys(payload.error).every((key) => ['code', 'message', 'details', 'requestId'].includes(key)),
      ).toBe(true);
    },
  );

  it.each([
    'application/json; charset=utf-16',
    'application/json; foo',
    'application/json ; charset=latin1',
    'application/json; CHARSET="latin1"',
    'application/json; foo="unterminated',
  ])('a 415 for %j names the content type it refused and the one it wants', async (contentType) => {
    const res = await createAgentAs(contentType);
    expect(res.status).toBe(415);
    expect((await json<ErrorBody>(res)).error).toMatchObject({
      code: 'unsupported_media_type',
      message: expect.stringContaining('application/json'),
      details: { contentType },
    });
  });

  it.each([
    'application/json',
    'Application/JSON',
    'application/json; charset=utf-8',
    'application/json;charset=UTF-8',
    'application/json; charset="utf-8"',
    'application/json; charset=utf8; version=1',
    // RFC 9110 §8.3.1: optional whitespace around ";", and an empty parameter.
    'application/json ; charset=utf-8',
    'application/json;',
    'application/json ;charset=utf-8 ; ',
    // A quoted value is one value, quoted pairs and all.
    'application/json; foo="a; charset=latin1"',
    'application/json; foo="say \\"hi\\""; charset=utf-8',
  ])('JSON sent as %s is accepted', async (contentType) => {
    const res = await createAgentAs(contentType);
    expect(res.status).toBe(201);
  });

  it('a compressed body is a 415 naming its Content-Encoding, and the agent is not made', async () => {
    const { apiKey } = await harness.createCustomer();
    const res = await harness.call('POST', '/api/v1/agents', {
      key: apiKey,
      body: gzipSync('{"name":"zipped"}'),
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    });
    expect(res.status).toBe(415);
    expect((await json<ErrorBody>(res)).error).toMatchObject({
      code: 'unsupported_media_type',
      details: { contentEncoding: 'gzip' },
    });
    const list = await json<{ agents: unknown[] }>(
      await harness.call('GET', '/api/v1/agents', { key: apiKey }),
    );
    expect(list.agents).toEqual([]);
    const identity = await harness.call('POST', '/api/v1/agents', {
      key: apiKey,
      body: '{"name":"plain"}',
      headers: { 'content-type': 'application/json', 'content-encoding': 'identity' },
    });
    expect(identity.status).toBe(201);
  });

  it('a refused webhook URL is a 400 in the one validation shape, naming the body field', async () => {
    const { id, apiKey } = await harness.createCustomer();
    const long = `https://hooks.example.com/${'a'.repeat(2100)}`;
    for (const [method, path, key, field, url, message] of [
      [
        'PUT',
        '/api/v1/webhook',
        apiKey,
        'body.url',
        'ftp://x.example',
        'must use https:// (or http://, allowed here)',
      ],
      ['PUT', '/api/v1/webhook', apiKey, 'body.url', 'not a url', 'must be an absolute URL'],
      ['PUT', '/api/v1/webhook', apiKey, 'body.url', long, 'Too big'],
      [
        'POST',
        '/api/v1/admin/customers',
        undefined,
        'body.webhookUrl',
        'https://u:p@x.example/h',
        'must not contain a user name',
      ],
      ['POST', '/api/v1/admin/customers', undefined, 'body.webhookUrl', long, 'Too big'],
      ['POST', '/api/v1/admin/customers', undefined, 'body.webhookUrl', '', 'must be an absolute URL'],
      ['PATCH', `/api/v1/admin/customers/${id}`, undefined, 'body.webhookUrl', '', 'must be an absolute URL'],
      ['PUT', '/api/v1/webhook', apiKey, 'body.url', '', 'must be an absolute URL'],
      [
        'PATCH',
        `/api/v1/admin/customers/${id}`,
        undefined,
        'body.webhookUrl',
        'https://x.example/h#f',
        'must not contain a #fragment',
      ],
    ] as const) {
      const body = path.endsWith('webhook') ? { url } : { name: 'x', webhookUrl: url };
      const res = await harness.call(method, path, { key, body });
      const label = `${method} ${path} ${url.slice(0, 40)}`;
      expect(res.status, label).toBe(400);
      const error = (await json<ErrorBody>(res)).error;
      expect(error.code, label).toBe('validation_error');
      expect(error.message, label).toMatch(new RegExp(`^${field.replace('.', '\\.')}: `));
      expect(error.message, label).toContain(message);
      expect(error.details, label).toEqual({
        issues: [{ field, message: expect.stringContaining(message) }],
      });
    }
  });

  it('a PATCH with nothing to change is a 400 naming the body, and writes no audit row', async () => {
    const { id, apiKey } = await harness.createCustomer();
    const agentId = await harness.createAgent(apiKey);
    for (const [path, key] of [
      [`/api/v1/agents/${agentId}`, apiKey],
      [`/api/v1/admin/customers/${id}`, undefined],
    ] as const) {
      for (const options of [
        { body: {} },
        { body: '', headers: { 'content-type': 'application/json' } },
        {},
      ]) {
        const res = await harness.call('PATCH', path, { key, ...options });
        const label = `${path} ${JSON.stringify(options)}`;
        expect(res.status, label).toBe(400);
        expect((await json<ErrorBody>(res)).error, label).toMatchObject({
          code: 'validation_error',
          message: 'body: send at least one field to change',
        });
      }
    }
    const audit = await json<{ entries: { action: string }[] }>(
      await harness.call('GET', `/api/v1/admin/audit-log?customerId=${id}`),
    );
    expect(audit.entries.map((entry) => entry.action).filter((action) => action.endsWith('.update'))).toEqual(
      [],
    );
  });

  it('an optional body may be sent empty with a JSON content type, as many clients do', async () => {
    const { apiKey } = await harness.createCustomer();
    const res = await harness.call('POST', '/api/v1/webhook/rotate-secret', {
      key: apiKey,
      body: '',
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(200);
  });

  it('a body sent to a route that takes none is refused, not ignored; {} and no body are fine', async () => {
    const { id } = await harness.createCustomer();
    const path = `/api/v1/admin/customers/${id}/rotate-key`;
    const malformed = await harness.call('POST', path, { body: '{' });
    expect((await json<ErrorBody>(malformed)).error.code).toBe('invalid_json');
    for (const body of [{ revokeOld: false }, [], 'x', null]) {
      const res = await harness.call('POST', path, { body: JSON.stringify(body) });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await json<ErrorBody>(res)).error, JSON.stringify(body)).toMatchObject({
        code: 'validation_error',
        message: 'body: this endpoint takes no body: send none (or {})',
      });
    }
    expect((await harness.call('POST', path, { body: {} })).status).toBe(200);
    expect((await harness.call('POST', path)).status).toBe(200);
    // Another such route, from the other API: starting an agent.
    const { apiKey } = await harness.createCustomer();
    const agentId = await harness.createAgent(apiKey);
    const start = await harness.call('POST', `/api/v1/agents/${agentId}/start`, {
      key: apiKey,
      body: { force: true },
    });
    expect((await json<ErrorBody>(start)).error.message).toBe(
      'body: this endpoint takes no body: send none (or {})',
    );
  });

  it('a DELETE with a body, or a query parameter a route does not take, is refused and nothing is deleted', async () => {
    const { apiKey, id } = await harness.createCustomer();
    const agentId = await harness.createAgent(apiKey);
    const withBody = await harness.call('DELETE', `/api/v1/agents/${agentId}`, {
      key: apiKey,
      body: { confirm: false },
    });
    expect(withBody.status).toBe(400);
    expect((await json<ErrorBody>(withBody)).error.message).toBe(
      'body: this endpoint takes no body: send none (or {})',
    );
    const dryRun = await harness.call('DELETE', `/api/v1/agents/${agentId}?dryRun=true`, { key: apiKey });
    expect(dryRun.status).toBe(400);
    expect((await json<ErrorBody>(dryRun)).error).toMatchObject({
      code: 'unknown_field',
      message: 'Unknown field: dryRun',
      details: { fields: ['dryRun'], issues: [{ field: 'query.dryRun' }] },
    });
    expect((await harness.call('GET', `/api/v1/agents/${agentId}`, { key: apiKey })).status).toBe(200);
    const rotate = await harness.call('POST', `/api/v1/admin/customers/${id}/rotate-key?revokeOld=false`);
    expect((await json<ErrorBody>(rotate)).error.code).toBe('unknown_field');
    expect((await harness.call('GET', '/api/v1/agents', { key: apiKey })).status).toBe(200);
    // A route with a query of its own still takes it; one it does not know is refused there too.
    expect((await harness.call('GET', '/api/v1/agents?limit=1', { key: apiKey })).status).toBe(200);
    expect((await harness.call('GET', '/api/v1/usage?agentId=x', { key: apiKey })).status).toBe(400);
    expect((await harness.call('DELETE', `/api/v1/agents/${agentId}`, { key: apiKey })).status).toBe(204);
  });

  it('an unknown field is named as itself, in the body, nested or in the query', async () => {
    const { apiKey, id } = await harness.createCustomer();
    const agentId = await harness.createAgent(apiKey);
    const body = await harness.call('PATCH', `/api/v1/agents/${agentId}`, {
      key: apiKey,
      body: { name: 'renamed', foo: 1, bar: 2 },
    });
    expect(body.status).toBe(400);
    expect((await json<ErrorBody>(body)).error).toMatchObject({
      code: 'unknown_field',
      message: 'Unknown fields: foo, bar',
      details: {
        fields: ['foo', 'bar'],
        issues: [
          { field: 'body.foo', message: 'not a field this endpoint takes' },
          { field: 'body.bar', message: 'not a field this endpoint takes' },
        ],
      },
    });
    const nested = await harness.call('PATCH', `/api/v1/admin/customers/${id}`, {
      body: { limits: { messagesPerDay: 5, perDay: 5 } },
    });
    expect((await json<ErrorBody>(nested)).error).toMatchObject({
      code: 'unknown_field',
      details: { fields: ['perDay'], issues: [{ field: 'body.limits.perDay' }] },
    });
    // One unknown at the top and one nested: both are listed, by name and by path.
    const both = await harness.call('PATCH', `/api/v1/admin/customers/${id}`, {
      body: { name: 'Both', foo: 1, limits: { messagesPerDay: 5, perDay: 5 } },
    });
    const bothError = (
      await json<{ error: { code: string; details: { fields: string[]; issues: { field: string }[] } } }>(
        both,
      )
    ).error;
    expect(bothError.code).toBe('unknown_field');
    expect([...bothError.details.fields].sort()).toEqual(['foo', 'perDay']);
    expect(bothError.details.issues.map((issue) => issue.field).sort()).toEqual([
      'body.foo',
      'body.limits.perDay',
    ]);
    const query = await harness.call('GET', '/api/v1/agents?foo=1', { key: apiKey });
    expect((await json<ErrorBody>(query)).error).toMatchObject({
      code: 'unknown_field',
      details: { fields: ['foo'], issues: [{ field: 'query.foo' }] },
    });
    // Nothing was changed by the refused PATCH.
    const agent = await harness.call('GET', `/api/v1/agents/${agentId}`, { key: apiKey });
    expect((await json<{ agent: { name: string } }>(agent)).agent.name).not.toBe('renamed');
  });

  it('a body over 64 KB is a 413', async () => {
    const { apiKey } = await harness.createCustomer();
    const res = await harness.call('POST', '/api/v1/agents', {
      key: apiKey,
      body: { name: 'x', systemPrompt: 'a'.repeat(70 * 1024) },
    });
    expect(res.status).toBe(413);
    expect((await json<ErrorBody>(res)).error).toMatchObject({
      code: 'payload_too_large',
      details: { maxBytes: 65536 },
    });
  });

  it('an unknown route is a 404 and a wrong method a 405 listing the right ones, in the one shape', async () => {
    const res = await harness.call('GET', '/api/v1/nothing-here');
    expect(res.status).toBe(404);
    expect((await json<ErrorBody>(res)).error.code).toBe('not_found');
    expect(
      (await harness.call('DELETE', '/api/v1/agents/00000000-0000-4000-8000-000000000000/nope')).status,
    ).toBe(404);
    // A trailing slash names no route (the router is strict): a 404, not a 405 allowing what was sent.
    const slash = await harness.call('GET', '/api/v1/agents/', { key: null });
    expect(slash.status).toBe(404);
    expect((await json<ErrorBody>(slash)).error.code).toBe('not_found');

    const { apiKey } = await harness.createCustomer();
    const agentId = await harness.createAgent(apiKey);
    for (const [method, path, allowed] of [
      ['DELETE', '/api/v1/admin/customers', ['GET', 'HEAD', 'POST']],
      ['PUT', `/api/v1/agents/${agentId}`, ['DELETE', 'GET', 'HEAD', 'PATCH']],
      ['GET', `/api/v1/agents/${agentId}/start`, ['POST']],
      ['GET', `/telegram/${agentId}`, ['POST']],
    ] as const) {
      const wrong = await harness.call(method, path, { key: apiKey });
      expect(wrong.status, `${method} ${path}`).toBe(405);
      expect(wrong.headers.get('allow'), `${method} ${path}`).toBe(allowed.join(', '));
      expect((await json<ErrorBody>(wrong)).error).toMatchObject({
        code: 'method_not_allowed',
        message: `${method} is not allowed on ${path}; use ${allowed.join(', ')}`,
        details: { allowed },
      });
    }
  });

  it('serves the OpenAPI 3.1 document built from the route schemas, and the docs page', async () => {
    const res = await harness.call('GET', '/openapi.json', { key: null });
    expect(res.status).toBe(200);
    const doc = await json<{
      openapi: string;
      paths: Record<string, Record<string, { operationId: string }>>;
      components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
    }>(res);
    expect(doc.openapi).toBe('3.1.0');
    const operations = Object.values(doc.paths).flatMap((methods) =>
      Object.values(methods).map((op) => op.operationId),
    );
    for (const operation of [
      'createCustomer',
      'listCustomers',
      'getCustomer',
      'updateCustomer',
      'deleteCustomer',
      'rotateCustomerKey',
      'listAdminAuditLog',
      'createAgent',
      'listAgents',
      'getAgent',
      'updateAgent',
      'deleteAgent',
      'setTelegramCredentials',
      'setClaudeCredentials',
      'deleteCredentials',
      'getCredentials',
      'listAuditLog',
      'getHealth',
    ]) {
      expect(operations).toContain(operation);
    }
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining(['Agent', 'Customer', 'Error', 'CreateAgent']),
    );
    expect(Object.keys(doc.components.securitySchemes)).toEqual(['adminKey', 'customerKey']);
    const docs = await harness.call('GET', '/docs', { key: null });
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('/openapi.json');
  });

  it('documents the 503 of every call that hands work to the jobs engine, and Retry-After on 429 and 503', async () => {
    const doc = await json<{
      paths: Record<
        string,
        Record<string, { responses: Record<string, { headers?: Record<string, unknown> }> }>
      >;
    }>(await harness.call('GET', '/openapi.json', { key: null }));
    const responsesOf = (method: string, path: string) => doc.paths[path]?.[method]?.responses ?? {};
    for (const [method, path] of [
      ['post', '/api/v1/agents/{id}/start'],
      ['post', '/api/v1/agents/{id}/stop'],
      ['post', '/api/v1/agents/{id}/credentials/validate'],
      ['post', '/api/v1/agents/{id}/pairing-requests/{code}/approve'],
      ['post', '/api/v1/webhook/test'],
      ['post', '/api/v1/webhook/deliveries/{id}/redeliver'],
      ['put', '/api/v1/agents/{id}/credentials/telegram'],
    ] as const) {
      expect(responsesOf(method, path)['503']?.headers, `${method} ${path}`).toHaveProperty('Retry-After');
    }
    expect(responsesOf('get', '/api/v1/agents')['429']?.headers).toHaveProperty('Retry-After');
    for (const [method, path] of [
      ['put', '/api/v1/agents/{id}/credentials/telegram'],
      ['delete', '/api/v1/agents/{id}/credentials/{kind}'],
    ] as const) {
      expect(Object.keys(responsesOf(method, path)), `${method} ${path}`).toContain('409');
    }
  });
});
