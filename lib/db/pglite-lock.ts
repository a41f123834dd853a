import { randomUUID } from 'node:crypto';
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/*
 * PGlite takes no lock on its data directory (it writes postmaster.pid with pid -42): a second
 * process opening the same directory succeeds, both write, and one's committed rows are gone at the
 * next start, or the directory no longer opens (electric-sql/pglite#1106). Two `npm start`s in one
 * checkout, or `npm run migrate` beside a running server, are enough. So the platform holds a lock
 * file beside the directory, naming the process that has it open.
 *
 * A holder is taken over only when its process is gone (never because it is slow: a live holder that
 * stopped answering is still writing). A second opener waits a few seconds, which covers a restart
 * whose old process is still shutting down, then fails with a message naming the holder.
 */

export interface LockHolder {
  pid: number;
  /** Tells two openings by one process apart (the directory opened twice, or a recycled pid). */
  token: string;
  openedAt: string;
}

export class DataDirInUseError extends Error {
  constructor(
    readonly dir: string,
    readonly lockFile: string,
    readonly holder: LockHolder | undefined,
  ) {
    super(
      `${dir} is open in ${holder ? `process ${holder.pid} (since ${holder.openedAt})` : 'another process'}: ` +
        'PGlite allows one process at a time. Stop that process, point DATA_DIR elsewhere, or set DATABASE_URL ' +
        `to a PostgreSQL that several processes can share. If no such process runs, delete ${lockFile}.`,
    );
    this.name = 'DataDirInUseError';
  }
}

/** Locks this process holds, by lock file: the same directory opened twice in one process is refused too. */
const heldHere = new Set<string>();

export interface DataDirLock {
  release(): void;
}

/**
 * Takes the lock on `dir` (a PGlite data directory), waiting up to `waitMs` for a live holder to let
 * go. Throws DataDirInUseError when it does not.
 */
export async function lockDataDir(dir: string, options: { waitMs?: number } = {}): Promise<DataDirLock> {
  const lockFile = `${dir}.lock`;
  if (heldHere.has(lockFile)) throw new DataDirInUseError(dir, lockFile, holderOf(lockFile));
  const me: LockHolder = { pid: process.pid, token: randomUUID(), openedAt: new Date().toISOString() };
  const deadline = Date.now() + (options.waitMs ?? 10_000);
  for (;;) {
    if (tryCreate(lockFile, me)) break;
    const holder = holderOf(lockFile);
    // A file that cannot be read yet is being written by its creator: that one is alive.
    if (holder && !isAlive(holder.pid)) {
      takeOverStale(lockFile, holder);
      continue;
    }
    if (Date.now() >= deadline) throw new DataDirInUseError(dir, lockFile, holder);
    await sleep(100);
  }
  heldHere.add(lockFile);
  const releaseOnExit = () => removeIfMine(lockFile, me.token);
  // process.exit() skips the close() that would release it; a crash leaves it for the next opener.
  process.on('exit', releaseOnExit);
  return {
    release() {
      process.off('exit', releaseOnExit);
      heldHere.delete(lockFile);
      removeIfMine(lockFile, me.token);
    },
  };
}

function tryCreate(lockFile: string, me: LockHolder): boolean {
  try {
    // 'wx' fails if the file exists: of two openers racing, exactly one creates it.
    writeFileSync(lockFile, JSON.stringify(me), { flag: 'wx' });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

function holderOf(lockFile: string): LockHolder | undefined {
  try {
    const parsed = JSON.parse(readFileSync(lockFile, 'utf8')) as Partial<LockHolder>;
    if (typeof parsed.pid !== 'number' || typeof parsed.token !== 'string') return undefined;
    return { pid: parsed.pid, token: parsed.token, openedAt: String(parsed.openedAt) };
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  // Our own pid in a file this process does not hold: an earlier process (a container restarted with
  // the same pid) left it behind.
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Moves a dead holder's file aside, so that the next attempt can create ours. The move is checked:
 * when two openers take over at once, the second may move the fresh lock the first just created (or
 * is still writing), and puts it back instead of removing it.
 */
function takeOverStale(lockFile: string, stale: LockHolder): void {
  const aside = `${lockFile}.${process.pid}.${randomUUID()}`;
  try {
    renameSync(lockFile, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (holderOf(aside)?.token !== stale.token) {
    try {
      // A hard link puts the same file back only where none exists: a creator still writing it keeps
      // writing the same file.
      linkSync(aside, lockFile);
    } catch {}
  }
  rmSync(aside, { force: true });
}

function removeIfMine(lockFile: string, token: string): void {
  if (holderOf(lockFile)?.token === token) rmSync(lockFile, { force: true });
}
