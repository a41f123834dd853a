import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { auditLog } from '../../lib/db/schema';
import { databaseTargets } from '../support/db';
import { json, useApiHarness } from './harness';

/** The ip the audit log records for a customer created with these X-Forwarded-For headers. */
function auditedIp(harness: ReturnType<typeof useApiHarness>) {
  return async (forwardedFor?: string) => {
    const res = await harness.call('POST', '/api/v1/admin/customers', {
      body: { name: 'Ip' },
      headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
    });
    expect(res.status).toBe(201);
    const { customer } = await json<{ customer: { id: string } }>(res);
    const [row] = await harness.services.db
      .select()
      .from(auditLog)
      .where(eq(auditLog.customerId, customer.id));
    return row?.ip;
  };
}

describe.each(databaseTargets())('the client address in the audit log on %s', (target) => {
  describe('behind one proxy (the default, as on Heroku)', () => {
    const ip = auditedIp(useApiHarness(target));

    it('is the entry the proxy appended, never one the client wrote before it', async () => {
      expect(await ip('203.0.113.9')).toBe('203.0.113.9');
      expect(await ip('198.51.100.1, 203.0.113.9')).toBe('203.0.113.9');
      expect(await ip(' 2001:db8::1 ')).toBe('2001:db8::1');
    });

    it('is not text that is no address (with no socket here, none is recorded)', async () => {
      expect(await ip('<script>alert(1)</script>')).toBeNull();
      expect(await ip('203.0.113.9, not-an-ip')).toBeNull();
      expect(await ip('')).toBeNull();
      expect(await ip()).toBeNull();
    });
  });

  describe('behind two proxies', () => {
    const ip = auditedIp(useApiHarness(target, { TRUST_PROXY_HOPS: '2' }));

    it('is the entry the outer proxy appended', async () => {
      expect(await ip('198.51.100.1, 203.0.113.9, 10.0.0.1')).toBe('203.0.113.9');
      expect(await ip('10.0.0.1')).toBeNull();
    });
  });

  describe('with no proxy (TRUST_PROXY_HOPS=0)', () => {
    const ip = auditedIp(useApiHarness(target, { TRUST_PROXY_HOPS: '0' }));

    it('ignores X-Forwarded-For entirely', async () => {
      expect(await ip('203.0.113.9')).toBeNull();
    });
  });
});
