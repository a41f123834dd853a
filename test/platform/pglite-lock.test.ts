import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase, selectRows } from '../../lib/db/client';
import { DataDirInUseError, lockDataDir } from '../../lib/db/pglite-lock';

const lockModule = fileURLToPath(new URL('../../lib/db/pglite-lock.ts', import.meta.url));

/** Another node process running `body`, with lockDataDir imported and `dir` as process.argv[1]. */
function spawnLocker(dir: string, body: string): ChildProcess {
  const script = `import { lockDataDir } from ${JSON.stringify(lockModule)};\n${body}`;
  return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

/** Another process holding the lock on `dir` until it is killed (or for `holdMs`, then releasing it). */
async function holderProcess(dir: string, holdMs = 60_000): Promise<ChildProcess> {
  const child = spawnLocker(
    dir,
    `const lock = await lockDataDir(process.argv[1], { waitMs: 0 });
     process.stdout.write('locked\\n');
     setTimeout(() => { lock.release(); process.exit(0); }, ${holdMs});`,
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      if (String(chunk).includes('locked')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the holder exited with ${code} before locking`)));
  });
  return child;
}

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });

describe('the PGlite data directory lock', () => {
  let root: string;
  let dir: string;
  const children: ChildProcess[] = [];

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'oc-lock-'));
    dir = join(root, 'pglite');
  });
  afterEach(async () => {
    for (const child of children.splice(0)) {
      child.kill('SIGKILL');
      await exited(child);
    }
    rmSync(root, { recursive: true, force: true });
  });

  it('refuses a second opening in this process at once, and allows one after release', async () => {
    const first = await lockDataDir(dir);
    const started = Date.now();
    await expect(lockDataDir(dir)).rejects.toBeInstanceOf(DataDirInUseError);
    expect(Date.now() - started).toBeLessThan(1_000);
    first.release();
    expect(existsSync(`${dir}.lock`)).toBe(false);
    const again = await lockDataDir(dir);
    again.release();
  });

  it('refuses a directory another live process holds, naming it and the file to delete', async () => {
    const holder = await holderProcess(dir);
    children.push(holder);
    const error = await lockDataDir(dir, { waitMs: 300 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DataDirInUseError);
    const message = (error as Error).message;
    expect(message).toContain(`process ${holder.pid}`);
    expect(message).toContain(dir);
    expect(message).toContain(`${dir}.lock`);
    expect(message).toContain('DATA_DIR');
    // The refused opener left the holder's lock alone.
    expect(JSON.parse(readFileSync(`${dir}.lock`, 'utf8')).pid).toBe(holder.pid);
  });

  it('takes over from a holder that was killed, but not before', async () => {
    const holder = await holderProcess(dir);
    children.push(holder);
    await expect(lockDataDir(dir, { waitMs: 200 })).rejects.toBeInstanceOf(DataDirInUseError);
    holder.kill('SIGKILL');
    await exited(holder);
    // The killed holder's file is still there; its process is gone.
    expect(JSON.parse(readFileSync(`${dir}.lock`, 'utf8')).pid).toBe(holder.pid);
    const lock = await lockDataDir(dir, { waitMs: 0 });
    expect(JSON.parse(readFileSync(`${dir}.lock`, 'utf8')).pid).toBe(process.pid);
    lock.release();
  });

  it('waits for a holder that is shutting down (a restart), then takes the lock', async () => {
    const holder = await holderProcess(dir, 700);
    children.push(holder);
    const lock = await lockDataDir(dir, { waitMs: 10_000 });
    expect(JSON.parse(readFileSync(`${dir}.lock`, 'utf8')).pid).toBe(process.pid);
    lock.release();
  });

  it('of several processes racing for a stale lock, exactly one gets it', async () => {
    writeFileSync(
      `${dir}.lock`,
      JSON.stringify({ pid: 2 ** 22 + 12_345, token: 'stale', openedAt: new Date(0).toISOString() }),
    );
    const racers = Array.from({ length: 4 }, () =>
      spawnLocker(
        dir,
        // A winner holds on until killed, so a racer that starts late finds it alive.
        `try { await lockDataDir(process.argv[1], { waitMs: 1500 }); process.stdout.write('won'); setInterval(() => {}, 1000); }
         catch { process.stdout.write('lost'); }`,
      ),
    );
    children.push(...racers);
    const outcomes = await Promise.all(
      racers.map(
        (racer) =>
          new Promise<string>((resolve) => {
            let out = '';
            racer.stdout?.on('data', (chunk: Buffer) => {
              out += String(chunk);
              if (out === 'won' || out === 'lost') resolve(out);
            });
            racer.once('exit', () => resolve(out));
          }),
      ),
    );
    expect(outcomes.filter((outcome) => outcome === 'won')).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome === 'lost')).toHaveLength(3);
  }, 20_000);

  it('guards createDatabase: a second handle on the directory is refused and the first keeps its rows', async () => {
    const first = await createDatabase({ pgliteDir: dir });
    try {
      await first.db.execute(sql`create table kept (n int)`);
      await first.db.execute(sql`insert into kept values (1), (2)`);
      await expect(createDatabase({ pgliteDir: dir })).rejects.toBeInstanceOf(DataDirInUseError);
      await first.db.execute(sql`insert into kept values (3)`);
    } finally {
      await first.close();
    }
    expect(existsSync(`${dir}.lock`)).toBe(false);
    const reopened = await createDatabase({ pgliteDir: dir });
    try {
      const rows = await selectRows<{ n: number }>(reopened.db, sql`select count(*)::int as n from kept`);
      expect(rows[0]?.n).toBe(3);
    } finally {
      await reopened.close();
    }
  }, 60_000);
});
