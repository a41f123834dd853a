import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKeyring } from '../../lib/crypto';
import { createCustomer } from '../../lib/customers';
import { createDatabase, pgliteDirFor } from '../../lib/db/client';
import { migrateDatabase } from '../../lib/db/migrate';
import { lockDataDir } from '../../lib/db/pglite-lock';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Runs one of the entry points from its TypeScript source; resolves with how it ended. */
function runEntry(
  entry: string,
  env: Record<string, string>,
  args: string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(root, entry), ...args],
      {
        cwd: root,
        timeout: 60_000,
        env: { PATH: process.env.PATH ?? '', NODE_ENV: 'development', LOG_LEVEL: 'warn', ...env },
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A migrated embedded database in `dataDir` holding one customer (its webhook secret) under `key`. */
async function storeACustomerUnder(dataDir: string, key: string): Promise<void> {
  const handle = await createDatabase({ pgliteDir: pgliteDirFor(dataDir) });
  try {
    await migrateDatabase(handle);
    const system = { actor: { type: 'system' as const }, requestId: undefined, ip: undefined };
    await createCustomer(handle.db, system, createKeyring(key), { name: 'Acme' } as never);
  } finally {
    await handle.close();
  }
}

describe('a process that cannot reach its database', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'oc-startup-'));
  });
  afterEach(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('says which database did not answer in one line, without its credentials, and exits 1', async () => {
    const result = await runEntry('api/server.ts', {
      DATA_DIR: dataDir,
      DATABASE_URL: 'postgres://owner:hunter2secret@127.0.0.1:1/platform?password=querysecret',
    });
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^Cannot start web\+worker\. No answer from the database at DATABASE_URL /);
    expect(lines[0]).toContain('postgres://127.0.0.1:1/platform');
    expect(lines[0]).toContain('ECONNREFUSED');
    expect(result.stderr + result.stdout).not.toMatch(/hunter2secret|querysecret|owner/);
  }, 60_000);

  it('the migrate and rotate-master-key commands give up on a database that never answers, naming it', async () => {
    // Takes the connection, then says nothing: a firewall's black hole, a wedged proxy.
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    const env = {
      DATA_DIR: dataDir,
      DATABASE_URL: `postgres://owner:hunter2secret@127.0.0.1:${port}/platform`,
      ENCRYPTION_MASTER_KEY: randomBytes(32).toString('base64'),
      ENCRYPTION_MASTER_KEY_PREVIOUS: randomBytes(32).toString('base64'),
    };
    try {
      const results = await Promise.all([
        runEntry('lib/db/migrate-cli.ts', env),
        runEntry('lib/rotate-master-key-cli.ts', env),
      ]);
      for (const [index, result] of results.entries()) {
        expect(result.code, String(index)).toBe(1);
        expect(result.stderr.trim(), String(index)).toMatch(
          new RegExp(
            `^Cannot start the (migrations|master key rotation)\\. No answer from the database at DATABASE_URL .*127\\.0\\.0\\.1:${port}.*no answer within 15 s$`,
          ),
        );
        expect(result.stderr, String(index)).not.toContain('hunter2secret');
      }
    } finally {
      silent.close();
    }
  }, 60_000);

  it('names PORT, in one line, when another process holds it', async () => {
    const holder = createServer(() => {});
    await new Promise<void>((resolve) => holder.listen(0, resolve));
    const { port } = holder.address() as AddressInfo;
    try {
      const result = await runEntry('api/server.ts', { DATA_DIR: dataDir, PORT: String(port) });
      expect(result.code).toBe(1);
      expect(result.stderr.trim()).toBe(`Cannot start web+worker. PORT ${port} is in use by another process`);
    } finally {
      holder.close();
    }
  }, 60_000);

  it('every entry point prints its usage for --help and refuses an argument it does not take, doing nothing', async () => {
    const entries = [
      'api/server.ts',
      'functions/worker.ts',
      'lib/db/migrate-cli.ts',
      'lib/rotate-master-key-cli.ts',
    ];
    const env = { DATA_DIR: dataDir };
    const results = await Promise.all(
      entries.flatMap((entry) => [runEntry(entry, env, ['--help']), runEntry(entry, env, ['--dry-run'])]),
    );
    for (const [index, entry] of entries.entries()) {
      const [help, unknown] = [results[index * 2], results[index * 2 + 1]];
      expect(help?.code, entry).toBe(0);
      expect(help?.stdout, entry).toMatch(/^Usage: npm /);
      expect(unknown?.code, entry).toBe(1);
      expect(unknown?.stderr.trim(), entry).toMatch(
        /^Cannot start .*\. Unknown argument "--dry-run"\. Usage: npm /,
      );
    }
    expect(results[0]?.stdout).toContain('--web-only');
    const typo = await runEntry('api/server.ts', env, ['--webonly']);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain('Unknown argument "--webonly"');
    // Nothing ran: no database was created in DATA_DIR.
    expect(existsSync(join(dataDir, 'pglite'))).toBe(false);
  }, 60_000);

  it('names DATA_DIR when it cannot hold the development secrets', async () => {
    const file = join(dataDir, 'a-file');
    writeFileSync(file, '');
    const result = await runEntry('api/server.ts', { DATA_DIR: join(file, 'data') });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(
      /^Cannot start web\+worker\. Could not keep the development secrets in DATA_DIR \(.*a-file\/data\): ENOTDIR/,
    );
    expect(result.stderr).not.toMatch(/^\s+at /m);
  }, 60_000);

  it('the worker and the migrate command say the same for the embedded database another process holds', async () => {
    const lock = await lockDataDir(join(dataDir, 'pglite'));
    try {
      const [worker, migrate] = await Promise.all([
        runEntry('functions/worker.ts', { DATA_DIR: dataDir }),
        runEntry('lib/db/migrate-cli.ts', { DATA_DIR: dataDir }),
      ]);
      expect(worker.code).toBe(1);
      expect(worker.stderr.trim()).toMatch(
        new RegExp(
          `^Cannot start worker\\. Could not open the embedded database in .*pglite \\(DATA_DIR\\): .* is open in process ${process.pid} `,
        ),
      );
      expect(worker.stderr).toContain('pglite.lock');
      expect(migrate.code).toBe(1);
      expect(migrate.stderr.trim()).toMatch(
        new RegExp(
          `^Cannot start the migrations\\. Could not open the embedded database .* is open in process ${process.pid} `,
        ),
      );
      expect(worker.stderr + migrate.stderr).not.toMatch(/^\s+at /m);
    } finally {
      lock.release();
    }
  }, 60_000);

  it('MIGRATE_ON_START=false on a database without the migrations: one line saying what to run', async () => {
    const result = await runEntry('api/server.ts', { DATA_DIR: dataDir, MIGRATE_ON_START: 'false' });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(
      /^Cannot start web\+worker\. The embedded database in .*pglite \(DATA_DIR\) lacks \d+ migrations of this release \(the latest: \d{4}_\w+\) and MIGRATE_ON_START=false: run `npm run migrate` first, or unset MIGRATE_ON_START\.$/,
    );
  }, 60_000);

  it('a master key that decrypts none of the stored secrets stops the start, naming where the key came from', async () => {
    await storeACustomerUnder(dataDir, randomBytes(32).toString('base64'));
    const otherKey = randomBytes(32).toString('base64');
    const wrong = await runEntry('api/server.ts', { DATA_DIR: dataDir, ENCRYPTION_MASTER_KEY: otherKey });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim()).toMatch(
      /^Cannot start web\+worker\. ENCRYPTION_MASTER_KEY is not the key the database's secrets were encrypted with: it decrypts none of its 1 stored secret \(under master key version \d+; this key is version \d+\)\. Set ENCRYPTION_MASTER_KEY to the key they were made with; .*npm run rotate-master-key/,
    );
    expect(wrong.stderr).not.toContain(otherKey);
    expect(wrong.stderr.trim().split('\n')).toHaveLength(1);
    // Without ENCRYPTION_MASTER_KEY, development generates one in DATA_DIR: it cannot read them either.
    const generated = await runEntry('functions/worker.ts', { DATA_DIR: dataDir });
    expect(generated.code).toBe(1);
    expect(generated.stderr.trim()).toMatch(
      /^Cannot start worker\. The development master key in .*dev-secrets\.json is not the key the database's secrets/,
    );
  }, 60_000);

  it('rotate-master-key ends in one plain line, at any LOG_LEVEL: what to change when it cannot go on, done when done', async () => {
    const oldKey = randomBytes(32).toString('base64');
    const newKey = randomBytes(32).toString('base64');
    await storeACustomerUnder(dataDir, oldKey);
    const quiet = { DATA_DIR: dataDir, LOG_LEVEL: 'silent', ENCRYPTION_MASTER_KEY: newKey };

    const unrelated = await runEntry('lib/rotate-master-key-cli.ts', {
      ...quiet,
      ENCRYPTION_MASTER_KEY_PREVIOUS: randomBytes(32).toString('base64'),
    });
    expect(unrelated.code).toBe(1);
    expect(unrelated.stderr.trim()).toMatch(
      /^Cannot finish the master key rotation\. 1 stored secret is under master key version \d+, which neither ENCRYPTION_MASTER_KEY \(version \d+\) nor ENCRYPTION_MASTER_KEY_PREVIOUS \(version \d+\) decrypts: set ENCRYPTION_MASTER_KEY_PREVIOUS to the key they were encrypted with\. Nothing was changed\.$/,
    );
    expect(unrelated.stdout).toBe('');

    const done = await runEntry('lib/rotate-master-key-cli.ts', {
      ...quiet,
      ENCRYPTION_MASTER_KEY_PREVIOUS: oldKey,
    });
    expect(done.stderr).toBe('');
    expect(done.code).toBe(0);
    expect(done.stdout.trim()).toMatch(
      /^Master key rotation done: 0 credentials and 1 webhook secret re-encrypted; every stored secret is under ENCRYPTION_MASTER_KEY \(version \d+\)\. Remove ENCRYPTION_MASTER_KEY_PREVIOUS from every process\.$/,
    );
    expect(done.stdout + done.stderr).not.toContain(oldKey);
  }, 60_000);
});
