import { describe, expect, it } from 'vitest';
import { generateApiKey } from '../../lib/api-keys';
import { databaseTargets } from '../support/db';
import { TEST_ADMIN_KEY } from '../support/services';
import { type ApiHarness, json, useApiHarness } from './harness';

const ID = '00000000-0000-4000-8000-000000000000';
const CUSTOMER_ROUTES: [string, string][] = [
  ['POST', '/api/v1/agents'],
  ['GET', '/api/v1/agents'],
  ['GET', `/api/v1/agents/${ID}`],
  ['PATCH', `/api/v1/agents/${ID}`],
  ['DELETE', `/api/v1/agents/${ID}`],
  ['PUT', `/api/v1/agents/${ID}/credentials/telegram`],
  ['DELETE', `/api/v1/agents/${ID}/credentials/telegram`],
  ['PUT', `/api/v1/agents/${ID}/credentials/claude`],
  ['DELETE', `/api/v1/agents/${ID}/credentials/claude`],
  ['GET', `/api/v1/agents/${ID}/credentials`],
  ['GET', '/api/v1/audit-log'],
];
const ADMIN_ROUTES: [string, string][] = [
  ['POST', '/api/v1/admin/customers'],
  ['GET', '/api/v1/admin/customers'],
  ['GET', `/api/v1/admin/customers/${ID}`],
  ['PATCH', `/api/v1/admin/customers/${ID}`],
  ['DELETE', `/api/v1/admin/customers/${ID}`],
  ['POST', `/api/v1/admin/customers/${ID}/rotate-key`],
  ['GET', '/api/v1/admin/audit-log'],
];

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  const body = await json<{ error: { code: string; message: string; requestId: string } }>(res);
  expect(body.error.code).toBe(code);
  expect(body.error.requestId).toEqual(expect.any(String));
  return body;
}

/** The checks every authenticated route must pass, whatever it does. */
export function runCommonAuthTests(
  harness: ApiHarness,
  routes: [string, string][],
  kind: 'admin' | 'customer',
) {
  describe.each(routes)('%s %s', (method, path) => {
    it('401 without a key', async () => {
      const body = await expectError(await harness.call(method, path, { key: null }), 401, 'unauthorized');
      expect(body.error.message).toMatch(/Missing API key/);
    });
    it('401 with a malformed Authorization header', async () => {
      await expectError(
        await harness.call(method, path, { key: null, headers: { authorization: 'Basic abc' } }),
        401,
        'unauthorized',
      );
    });
    it('401 with a well-formed key that does not exist', async () => {
      await expectError(await harness.call(method, path, { key: generateApiKey().key }), 401, 'unauthorized');
    });
    if (kind === 'admin') {
      it('401 with a customer key', async () => {
        const customer = await harness.createCustomer();
        await expectError(await harness.call(method, path, { key: customer.apiKey }), 401, 'unauthorized');
      });
      it('401 with the admin key plus one character', async () => {
        await expectError(
          await harness.call(method, path, { key: `${TEST_ADMIN_KEY}x` }),
          401,
          'unauthorized',
        );
      });
    } else {
      it('401 with the admin key', async () => {
        await expectError(await harness.call(method, path, { key: TEST_ADMIN_KEY }), 401, 'unauthorized');
      });
      it('403 for a suspended customer', async () => {
        const customer = await harness.createCustomer();
        const res = await harness.call('PATCH', `/api/v1/admin/customers/${customer.id}`, {
          body: { status: 'suspended' },
        });
        expect(res.status).toBe(200);
        await expectError(
          await harness.call(method, path, { key: customer.apiKey }),
          403,
          'customer_suspended',
        );
      });
    }
  });
}

describe.each(databaseTargets())('authentication on %s', (target) => {
  const harness = useApiHarness(target);
  describe('customer routes', () => runCommonAuthTests(harness, CUSTOMER_ROUTES, 'customer'));
  describe('admin routes', () => runCommonAuthTests(harness, ADMIN_ROUTES, 'admin'));

  it('accepts the key as X-API-Key too', async () => {
    const customer = await harness.createCustomer();
    const res = await harness.call('GET', '/api/v1/agents', {
      key: null,
      headers: { 'x-api-key': customer.apiKey },
    });
    expect(res.status).toBe(200);
  });

  it('a reactivated customer gets in again', async () => {
    const customer = await harness.createCustomer();
    await harness.call('PATCH', `/api/v1/admin/customers/${customer.id}`, { body: { status: 'suspended' } });
    expect((await harness.call('GET', '/api/v1/agents', { key: customer.apiKey })).status).toBe(403);
    await harness.call('PATCH', `/api/v1/admin/customers/${customer.id}`, { body: { status: 'active' } });
    expect((await harness.call('GET', '/api/v1/agents', { key: customer.apiKey })).status).toBe(200);
  });
});
