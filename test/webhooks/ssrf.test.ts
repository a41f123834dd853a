import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../lib/errors';
import {
  BlockedTargetError,
  createWebhookDispatcher,
  findBlockedTargetError,
  type HostResolver,
  resolveAllowedAddresses,
  validateWebhookUrl,
  webhookUrlProblem,
} from '../../lib/webhooks/ssrf';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';

const production = { production: true };

describe('validateWebhookUrl (save time)', () => {
  it.each([
    'https://hooks.example.com/openclaw',
    'https://hooks.example.com:8443/openclaw?tenant=42',
    'https://93.184.216.34/hook',
    'https://[2606:4700:4700::1111]/hook',
  ])('accepts %s in production', (url) => {
    expect(webhookUrlProblem(url, production)).toBeUndefined();
    expect(validateWebhookUrl(url, production).href).toBe(new URL(url).href);
  });

  it.each([
    ['not a URL', 'hooks.example.com/openclaw', 'must be an absolute URL'],
    ['ftp', 'ftp://hooks.example.com/x', 'must use https://'],
    ['http in production', 'http://hooks.example.com/x', 'must use https://'],
    ['credentials', 'https://user:pass@hooks.example.com/x', 'must not contain a user name or password'],
    ['user only', 'https://user@hooks.example.com/x', 'must not contain a user name or password'],
    ['fragment', 'https://hooks.example.com/x#frag', 'must not contain a #fragment'],
    ['empty fragment', 'https://hooks.example.com/x#', 'must not contain a #fragment'],
    ['localhost', 'https://localhost/x', 'must not point at localhost'],
    ['a .localhost name', 'https://api.localhost/x', 'must not point at localhost'],
    ['localhost with the root dot', 'https://localhost./x', 'must not point at localhost'],
    ['a .localhost name with the root dot', 'https://API.localhost./x', 'must not point at localhost'],
    ['loopback literal', 'https://127.0.0.1/x', 'must not point at 127.0.0.1, a blocked address (loopback)'],
    ['metadata literal', 'https://169.254.169.254/latest/meta-data', 'linkLocal'],
    ['decimal loopback', 'https://2130706433/x', 'loopback'],
    ['octal loopback', 'https://0177.0.0.1/x', 'loopback'],
    ['hex loopback', 'https://0x7f000001/x', 'loopback'],
    ['short loopback', 'https://127.1/x', 'loopback'],
    ['hex-dotted private', 'https://0xa.0.0.1/x', 'private'],
    ['IPv6 loopback', 'https://[::1]/x', 'loopback'],
    ['IPv4-mapped loopback', 'https://[::ffff:127.0.0.1]/x', 'ipv4Mapped'],
    ['too long', `https://hooks.example.com/${'a'.repeat(2100)}`, 'at most 2048'],
  ])('refuses %s', (_, url, message) => {
    expect(webhookUrlProblem(url, production)).toContain(message);
    try {
      validateWebhookUrl(url, production);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).code).toBe('validation_error');
      expect((error as AppError).message).toBe(`body.webhookUrl: ${webhookUrlProblem(url, production)}`);
      expect((error as AppError).details).toEqual({
        issues: [{ field: 'body.webhookUrl', message: webhookUrlProblem(url, production) }],
      });
    }
  });

  it('allows http and local targets in development', () => {
    expect(webhookUrlProblem('http://127.0.0.1:4000/hooks', { production: false })).toBeUndefined();
    expect(webhookUrlProblem('http://localhost:4000/hooks', { production: false })).toBeUndefined();
    expect(
      webhookUrlProblem('http://localhost:4000/hooks', { production: true, allowPrivate: true }),
    ).toBeUndefined();
    expect(webhookUrlProblem('https://localhost/x', { production: false, allowPrivate: false })).toContain(
      'localhost',
    );
    // Where http is allowed, the message says so.
    expect(webhookUrlProblem('ftp://hooks.example.com/x', { production: false })).toBe(
      'must use https:// (or http://, allowed here)',
    );
  });

  it('never echoes the credentials it refuses', () => {
    const problem = webhookUrlProblem('https://admin:hunter2@hooks.example.com/x', production);
    expect(problem).not.toContain('hunter2');
  });
});

/** A resolver that answers from a table, counting calls; never touches DNS. */
function fakeResolver(table: Record<string, string[]>): HostResolver & { calls: string[] } {
  const calls: string[] = [];
  const resolve = async (hostname: string) => {
    calls.push(hostname);
    const answers = table[hostname];
    if (!answers) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return answers.map((address) => ({
      address,
      family: address.includes(':') ? (6 as const) : (4 as const),
    }));
  };
  return Object.assign(resolve, { calls });
}

describe('resolveAllowedAddresses (delivery time)', () => {
  const resolve = fakeResolver({
    'public.example': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
    'internal.example': ['10.0.0.5'],
    'metadata.example': ['169.254.169.254'],
    'mixed.example': ['93.184.216.34', '127.0.0.1'],
    'mapped.example': ['::ffff:192.168.1.1'],
    'nat64.example': ['64:ff9b::a9fe:a9fe'],
    'empty.example': [],
  });

  it('allows a name whose every address is public (never connecting to it)', async () => {
    await expect(resolveAllowedAddresses('public.example', { resolve })).resolves.toHaveLength(2);
  });

  it.each([
    'internal.example',
    'metadata.example',
    'mixed.example',
    'mapped.example',
    'nat64.example',
    'empty.example',
  ])('refuses %s', async (host) => {
    await expect(resolveAllowedAddresses(host, { resolve })).rejects.toBeInstanceOf(BlockedTargetError);
  });

  it('allows an internal name when private targets are allowed', async () => {
    await expect(
      resolveAllowedAddresses('internal.example', { resolve, allowPrivate: true }),
    ).resolves.toEqual([{ address: '10.0.0.5', family: 4 }]);
  });

  it('refuses localhost through the real system resolver', async () => {
    await expect(resolveAllowedAddresses('localhost')).rejects.toThrow(
      /localhost resolves to .*, a blocked address \(loopback\)/,
    );
  });

  it('passes a resolver failure through (a retryable network error, not a block)', async () => {
    const error = await resolveAllowedAddresses('nowhere.example', { resolve }).catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(BlockedTargetError);
    expect((error as NodeJS.ErrnoException).code).toBe('ENOTFOUND');
  });
});

describe('createWebhookDispatcher (the guard on the connection itself)', () => {
  let receiver: WebhookReceiver;
  beforeAll(async () => {
    receiver = await startWebhookReceiver([{ status: 200, body: 'ok' }]);
  });
  afterAll(async () => {
    await receiver.close();
  });

  async function post(url: string, dispatcher: ReturnType<typeof createWebhookDispatcher>) {
    try {
      const response = await request(url, { method: 'POST', body: '{}', dispatcher });
      await response.body.text();
      return { status: response.statusCode };
    } catch (error) {
      return { error };
    } finally {
      await dispatcher.close();
    }
  }

  it.each([
    ['a literal loopback address', (port: number) => `http://127.0.0.1:${port}/hooks`],
    ['a decimal loopback address', (port: number) => `http://2130706433:${port}/hooks`],
    ['an IPv6 loopback literal', (port: number) => `http://[::1]:${port}/hooks`],
    ['an IPv4-mapped loopback literal', (port: number) => `http://[::ffff:127.0.0.1]:${port}/hooks`],
    ['localhost (system resolver)', (port: number) => `http://localhost:${port}/hooks`],
  ])('refuses %s before connecting', async (_, url) => {
    const before = receiver.requests.length;
    const result = await post(url(receiver.port), createWebhookDispatcher({ allowPrivate: false }));
    expect(findBlockedTargetError(result.error)).toBeInstanceOf(BlockedTargetError);
    expect(receiver.requests.length).toBe(before);
  });

  it('refuses a name that an injected resolver maps to loopback', async () => {
    const resolve = fakeResolver({ 'hooks.customer.test': ['127.0.0.1'] });
    const before = receiver.requests.length;
    const result = await post(
      `http://hooks.customer.test:${receiver.port}/hooks`,
      createWebhookDispatcher({ allowPrivate: false, resolve }),
    );
    expect(findBlockedTargetError(result.error)?.message).toMatch(
      /hooks\.customer\.test resolves to 127\.0\.0\.1, a blocked address/,
    );
    expect(receiver.requests.length).toBe(before);
  });

  it('connects to exactly the address it checked, resolving once (no rebinding window)', async () => {
    // A rebinding resolver: the first answer is what gets checked; a second lookup would get
    // another address. The connection must use the first answer and never ask again.
    let calls = 0;
    const resolve: HostResolver = async () => {
      calls += 1;
      return calls === 1 ? [{ address: '127.0.0.1', family: 4 }] : [{ address: '10.9.9.9', family: 4 }];
    };
    const before = receiver.requests.length;
    const result = await post(
      `http://rebind.customer.test:${receiver.port}/hooks`,
      createWebhookDispatcher({ allowPrivate: true, resolve }),
    );
    expect(result).toEqual({ status: 200 });
    expect(calls).toBe(1);
    expect(receiver.requests.length).toBe(before + 1);
    expect(receiver.requests.at(-1)?.headers.host).toBe(`rebind.customer.test:${receiver.port}`);
  });

  it('refuses when any one of several addresses is internal', async () => {
    const resolve = fakeResolver({ 'multi.customer.test': ['127.0.0.1', '10.0.0.1'] });
    const result = await post(
      `http://multi.customer.test:${receiver.port}/hooks`,
      createWebhookDispatcher({ allowPrivate: false, resolve }),
    );
    expect(findBlockedTargetError(result.error)).toBeInstanceOf(BlockedTargetError);
  });

  it('reaches a local receiver by literal address and by name when private targets are allowed', async () => {
    expect(
      await post(`http://127.0.0.1:${receiver.port}/hooks`, createWebhookDispatcher({ allowPrivate: true })),
    ).toEqual({
      status: 200,
    });
    expect(
      await post(`http://localhost:${receiver.port}/hooks`, createWebhookDispatcher({ allowPrivate: true })),
    ).toEqual({
      status: 200,
    });
  });
});
