import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FakeInngestGateway, startFakeInngestGateway } from '../support/fake-inngest-gateway';
import { until } from '../support/until';

const root = fileURLToPath(new URL('../..', import.meta.url));

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

// JOBS_ENGINE=inngest: the worker holds a WebSocket to Inngest's connect gateway. Node 20 has no
// global WebSocket, which is what the SDK opens it with; this runs on whatever Node runs the tests.
describe.each(['functions/worker.ts', 'api/server.ts'])('JOBS_ENGINE=inngest, %s', (entry) => {
  let dataDir: string;
  let gateway: FakeInngestGateway;
  let child: ChildProcess | undefined;
  let output = '';

  beforeEach(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'oc-connect-'));
    gateway = await startFakeInngestGateway();
    output = '';
  });
  afterEach(async () => {
    child?.kill('SIGKILL');
    child = undefined;
    await gateway.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('connects its functions to the gateway over a WebSocket and closes cleanly on SIGTERM', async () => {
    const started = spawn(process.execPath, ['--import', 'tsx', join(root, entry)], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'development',
        LOG_LEVEL: 'info',
        DATA_DIR: dataDir,
        PORT: String(await freePort()),
        JOBS_ENGINE: 'inngest',
        INNGEST_BASE_URL: gateway.origin,
        INNGEST_APP_ID: 'connect-test-app',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = started;
    started.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    started.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => started.on('exit', (code) => resolve(code)));

    await until(() => output.includes('connect worker started') || started.exitCode !== null, 'the worker', {
      timeoutMs: 30_000,
      detail: () => output,
    });
    expect(output).not.toContain('WebSockets not supported');
    expect(started.exitCode, output).toBeNull();
    expect(gateway.startRequests).toBe(1);
    expect(gateway.workers).toHaveLength(1);
    const [worker] = gateway.workers;
    expect(worker?.connectionId).toBe('conn-1');
    expect(worker?.sessionToken).toBe('fake-session-token');
    expect(worker?.apps.map((app) => app.name)).toEqual(['connect-test-app']);
    expect(worker?.apps[0]?.functionIds).toContain('connect-test-app-reply-to-message');

    started.kill('SIGTERM');
    expect(
      await Promise.race([
        exited,
        new Promise((resolve) => setTimeout(() => resolve('still running'), 20_000)),
      ]),
    ).toBe(0);
    // The drain of a graceful close went over the socket: WORKER_PAUSE (8) of connect.proto.
    expect(worker?.laterKinds).toContain(8);
  }, 60_000);
});
