import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverOnce } from '../../lib/webhooks/deliver';
import { generateWebhookSecret, signPayload } from '../../lib/webhooks/sign';
import { createWebhookDispatcher, type HostResolver } from '../../lib/webhooks/ssrf';
import { hasOpenssl } from '../support/openssl';

/**
 * The guard resolves names itself but still connects BY NAME: TLS sends the host as SNI and
 * checks the certificate against it, as a plain request would. A self-signed certificate for
 * hooks.customer.test, made with the openssl CLI, stands in for a customer's endpoint.
 */

describe.skipIf(!hasOpenssl())('TLS through the guarded dispatcher', () => {
  let dir: string;
  let cert: string;
  let server: Server;
  let port: number;
  const seen: { servername: string | false | null; host: string | undefined }[] = [];
  const resolve: HostResolver = async () => [{ address: '127.0.0.1', family: 4 }];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'webhook-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=hooks.customer.test',
        '-addext',
        'subjectAltName=DNS:hooks.customer.test',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (req, res) => {
      seen.push({ servername: (req.socket as TLSSocket).servername, host: req.headers.host });
      req.resume();
      req.on('end', () => res.writeHead(200).end('ok'));
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((done) => server.close(() => done()));
    rmSync(dir, { recursive: true, force: true });
  });

  function send(host: string, dispatcher: ReturnType<typeof createWebhookDispatcher>) {
    const body = '{}';
    const headers = signPayload({
      id: 'evt-tls',
      timestamp: new Date(),
      body,
      secrets: { current: generateWebhookSecret() },
    });
    return deliverOnce({
      url: `https://${host}:${port}/hooks`,
      body,
      headers,
      allowPrivate: true,
      dispatcher,
    });
  }

  it('sends the host name as SNI and Host, and verifies the certificate for it', async () => {
    const dispatcher = createWebhookDispatcher({ allowPrivate: true, resolve, ca: cert });
    try {
      const result = await send('hooks.customer.test', dispatcher);
      expect(result).toMatchObject({ outcome: 'success', statusCode: 200, responseExcerpt: 'ok' });
      expect(seen.at(-1)).toEqual({ servername: 'hooks.customer.test', host: `hooks.customer.test:${port}` });
    } finally {
      await dispatcher.close();
    }
  });

  it('refuses a certificate issued for another name, even at a checked address', async () => {
    const dispatcher = createWebhookDispatcher({ allowPrivate: true, resolve, ca: cert });
    const before = seen.length;
    try {
      const result = await send('other.customer.test', dispatcher);
      expect(result.outcome).toBe('retry');
      expect(result.error).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID|altnames/);
      expect(seen.length).toBe(before);
    } finally {
      await dispatcher.close();
    }
  });
});
