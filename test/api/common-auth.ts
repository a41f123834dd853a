import { describe, expect, it } from 'vitest';
import { generateApiKey } from '../../lib/api-keys';
import { TEST_ADMIN_KEY } from '../support/services';
import { type ApiHarness, json } from './harness';

export async function expectError(res: Response, status: number, code: string) {
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
    it('401 with a malformed Authorization header, saying so rather than "missing"', async () => {
      for (const authorization of ['Basic abc', 'Bearer', 'Bearer a b', 'oc_live_key_without_scheme']) {
        const body = await expectError(
          await harness.call(method, path, { key: null, headers: { authorization } }),
          401,
          'unauthorized',
        );
        expect(body.error.message, authorization).toMatch(/^Malformed Authorization header/);
      }
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
