import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../api/app';
import { createDatabase, type DatabaseHandle } from '../../lib/db/client';
import { isDatabaseUnavailable } from '../../lib/db/unavailable';
import type { Services } from '../../lib/services';
import { apiRequest } from '../support/api-request';
import { closedPort } from '../support/loopback';
import { captureLogger, createTestServices, TEST_ADMIN_KEY } from '../support/services';

/*
 * A database that refuses connections (restarting, failed over, out of connections) is a 503 with
 * Retry-After, which a client or Telegram may retry, not a 500 that says the request was wrong.
 */
describe('a request while the database does not answer', () => {
  let database: DatabaseHandle;
  let services: Services;
  let app: App;
  const logs = captureLogger();

  beforeAll(async () => {
    database = await createDatabase({
      url: `postgres://postgres@127.0.0.1:${await closedPort()}/audit_none`,
    });
    services = await createTestServices({ database, logger: logs.logger });
    app = createApp(services);
  });
  afterAll(async () => {
    await services.close();
  });

  it('is a 503 with Retry-After, the cause in the log only', async () => {
    const res = await apiRequest(app, 'GET', '/api/v1/admin/customers', { key: TEST_ADMIN_KEY });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error).toMatchObject({
      code: 'service_unavailable',
      message: 'The database is not answering; try again shortly',
    });
    expect(JSON.stringify(body)).not.toContain('127.0.0.1');
    expect(logs.lines.some((line) => line.msg === 'the database did not answer')).toBe(true);
  });

  it('tells a statement the server refused from a server that is away', () => {
    const wrapped = new Error('Failed query: select 1', {
      cause: Object.assign(new Error('x'), { code: '57P01' }),
    });
    expect(isDatabaseUnavailable(wrapped)).toBe(true);
    expect(isDatabaseUnavailable(Object.assign(new Error('too many'), { code: '53300' }))).toBe(true);
    expect(isDatabaseUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isDatabaseUnavailable(new Error('Query read timeout'))).toBe(true);
    expect(isDatabaseUnavailable(new Error('Client was closed and is not queryable'))).toBe(true);
    expect(isDatabaseUnavailable(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isDatabaseUnavailable(Object.assign(new Error('unique'), { code: '23505' }))).toBe(false);
    expect(isDatabaseUnavailable(Object.assign(new Error('syntax'), { code: '42601' }))).toBe(false);
    expect(isDatabaseUnavailable(new Error('boom'))).toBe(false);
  });
});
