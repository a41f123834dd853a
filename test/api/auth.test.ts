import { describe, expect, it } from 'vitest';
import { databaseTargets } from '../support/db';
import { runCommonAuthTests } from './common-auth';
import { useApiHarness } from './harness';

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
