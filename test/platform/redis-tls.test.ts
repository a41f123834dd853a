import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseConfig } from '../../lib/config';
import { createRedis } from '../../lib/redis';
import { hasOpenssl } from '../support/openssl';

/**
 * Heroku Redis speaks rediss:// with a self-signed certificate. A TLS server with one, made with the
 * openssl CLI and passing every connection on to the real Redis, stands in for it.
 */
describe.skipIf(!hasOpenssl() || !inject('redisUrl'))('rediss:// with a self-signed certificate', () => {
  let dir: string;
  let server: Server;
  let url: string;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'redis-tls-'));
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1'],
        ...['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
      ],
      { stdio: 'ignore' },
    );
    const redis = new URL(inject('redisUrl'));
    server = createServer(
      { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
      (tls) => {
        const upstream = connect(Number(redis.port || 6379), redis.hostname);
        for (const socket of [tls, upstream]) {
          sockets.add(socket);
          socket.on('error', () => socket.destroy());
          socket.on('close', () => sockets.delete(socket));
        }
        tls.pipe(upstream).pipe(tls);
      },
    );
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const address = server.address();
    url = `rediss://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((done) => server.close(() => done()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('is refused by default, and the failure says why', async () => {
    const redis = createRedis(parseConfig({ REDIS_URL: url }));
    try {
      await expect(redis.ping(3_000)).rejects.toThrow(/self[- ]signed certificate/);
    } finally {
      await redis.close();
    }
  });

  it('is used with REDIS_TLS_VERIFY=false, over TLS', async () => {
    const config = parseConfig({ REDIS_URL: url, REDIS_TLS_VERIFY: 'false' });
    expect(config.redis).toEqual({ mode: 'tcp', url, verifyTls: false });
    const redis = createRedis(config);
    try {
      await redis.ping(3_000);
      expect(await redis.tcp?.set('redis-tls-test', 'over tls', 'EX', 10)).toBe('OK');
      expect(await redis.tcp?.get('redis-tls-test')).toBe('over tls');
    } finally {
      await redis.close();
    }
  });
});
