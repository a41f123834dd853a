import { afterAll, beforeAll } from 'vitest';
import { type App, type AppOptions, createApp } from '../../api/app';
import type { Services } from '../../lib/services';
import { apiRequest } from '../support/api-request';
import { createTestDatabase, type DatabaseTarget, type TestDatabase } from '../support/db';
import { createTestServices, TEST_ADMIN_KEY } from '../support/services';

export interface ApiHarness {
  app: App;
  services: Services;
  database: TestDatabase;
  /** A request with the admin key (or `key`), JSON body when given. */
  call(
    method: string,
    path: string,
    options?: { key?: string | null; body?: unknown; headers?: Record<string, string> },
  ): Promise<Response>;
  /** Creates a customer through the API; returns it with its key. */
  createCustomer(body?: Record<string, unknown>): Promise<{ id: string; apiKey: string }>;
  /** Creates an agent for the customer through the API; returns its id. */
  createAgent(apiKey: string, body?: Record<string, unknown>): Promise<string>;
}

/**
 * One fresh, migrated database and app per test file (per target), closed after it. Without a
 * `sendEvent` in `appOptions`, routes that send an event answer 503.
 */
export function useApiHarness(
  target: DatabaseTarget,
  env: Record<string, string> = {},
  appOptions: AppOptions = {},
): ApiHarness {
  const harness = {} as ApiHarness;
  beforeAll(async () => {
    harness.database = await createTestDatabase(target);
    harness.services = await createTestServices({ database: harness.database.handle, env });
    harness.app = createApp(harness.services, appOptions);
    harness.call = (method, path, options = {}) =>
      apiRequest(harness.app, method, path, {
        ...options,
        key: options.key === undefined ? TEST_ADMIN_KEY : options.key,
      });
    harness.createCustomer = async (body = {}) => {
      const res = await harness.call('POST', '/api/v1/admin/customers', {
        body: { name: 'Customer', ...body },
      });
      if (res.status !== 201) throw new Error(`create customer: ${res.status} ${await res.text()}`);
      const json = (await res.json()) as { customer: { id: string }; apiKey: string };
      return { id: json.customer.id, apiKey: json.apiKey };
    };
    harness.createAgent = async (apiKey, body = {}) => {
      const res = await harness.call('POST', '/api/v1/agents', {
        key: apiKey,
        body: { name: 'Agent', ...body },
      });
      if (res.status !== 201) throw new Error(`create agent: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { agent: { id: string } }).agent.id;
    };
  });
  afterAll(async () => {
    await harness.services?.close();
    await harness.database?.destroy();
  });
  return harness;
}

export const TELEGRAM_TOKEN = '123456789:AAEhBOweik6ad6PsVMRxjeQKKXA4fXiXAbc';
export const CLAUDE_KEY = 'sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789-WXYZ';

export async function json<T = Record<string, unknown>>(res: Response): Promise<T> {
  return (await res.json()) as T;
}
