import { describe, expect, it } from 'vitest';
import { databaseTargets } from '../support/db';
import { useApiHarness } from './harness';

describe.each(databaseTargets())('CORS on %s', (target) => {
  const harness = useApiHarness(target, { CORS_ORIGIN: 'https://app.example.com' });

  it('answers a preflight from an allowed origin, for the headers the API reads', async () => {
    const res = await harness.app.request('/api/v1/agents', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'PATCH',
        'access-control-request-headers': 'authorization, content-type, if-match, idempotency-key',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('if-match');
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('idempotency-key');
    expect(res.headers.get('access-control-allow-methods')).toContain('PATCH');
  });

  it('lets a browser read the ETag, request id, Retry-After and Idempotent-Replayed headers; another origin gets nothing', async () => {
    const { apiKey } = await harness.createCustomer();
    const res = await harness.call('GET', '/api/v1/agents', {
      key: apiKey,
      headers: { origin: 'https://app.example.com' },
    });
    expect(res.status).toBe(200);
    const exposed = (res.headers.get('access-control-expose-headers') ?? '').toLowerCase().split(/,\s*/);
    expect(exposed).toEqual(
      expect.arrayContaining(['etag', 'x-request-id', 'retry-after', 'idempotent-replayed']),
    );
    const other = await harness.call('GET', '/api/v1/agents', {
      key: apiKey,
      headers: { origin: 'https://evil.example.com' },
    });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});
