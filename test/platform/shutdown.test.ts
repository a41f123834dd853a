import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { closedPort } from '../support/loopback';
import { parseRawAnswer, rawRequest } from '../support/raw-http';
import { TEST_ADMIN_KEY } from '../support/services';
import { until } from '../support/until';

const root = fileURLToPath(new URL('../..', import.meta.url));

/*
 * A client that sends half a request and then nothing holds its connection open; on SIGTERM the
 * server closes it after its grace period, and the process still lets go of its work and exits 0
 * (rather than being cut off by the 25 s forced exit, or by Heroku's SIGKILL at 30 s).
 */
describe('stopping the platform while a client has stalled halfway through a request', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'oc-shutdown-'));
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('closes the stalled connection after the grace period and exits 0', { timeout: 90_000 }, async () => {
    const port = await closedPort();
    child = spawn(process.execPath, ['--import', 'tsx', join(root, 'api/server.ts')], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'development',
        LOG_LEVEL: 'warn',
        PORT: String(port),
        DATA_DIR: dataDir,
        ENCRYPTION_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
        ADMIN_API_KEY: TEST_ADMIN_KEY,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const platform = child;
    let output = '';
    for (const stream of [platform.stdout, platform.stderr]) {
      stream?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
    }
    await until(
      async () => {
        if (platform.exitCode !== null) throw new Error(`exited with ${platform.exitCode}\n${output}`);
        return fetch(`http://127.0.0.1:${port}/health`).then(
          (res) => res.ok,
          () => false,
        );
      },
      'the platform to answer /health',
      { timeoutMs: 45_000, detail: () => output },
    );

    // The server answers what its HTTP parser refuses in the API's error shape (api/client-errors.ts).
    const refused = parseRawAnswer(await rawRequest(port, 'FROB / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
    expect(refused.statusLine).toBe('HTTP/1.1 501 Not Implemented');
    expect(refused.body.error.code).toBe('method_not_implemented');

    const stalled = connect(port, '127.0.0.1');
    const ended = new Promise<void>((resolve) => stalled.once('close', () => resolve()));
    stalled.on('error', () => {});
    await new Promise<void>((resolve) => stalled.once('connect', () => resolve()));
    stalled.write(
      `POST /api/v1/agents HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TEST_ADMIN_KEY}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{',
    );

    const exited = new Promise<number | null>((resolve) => platform.once('exit', (code) => resolve(code)));
    const stoppedAt = Date.now();
    platform.kill('SIGTERM');
    const code = await exited;
    const took = Date.now() - stoppedAt;
    await ended;
    expect(code, output).toBe(0);
    expect(output).toContain('closing the HTTP connections still open 10 s after the stop signal');
    // Requests in flight had their grace period; exit code 0 says the 25 s forced exit (1) did not come.
    expect(took).toBeGreaterThanOrEqual(9_000);
  });
});
