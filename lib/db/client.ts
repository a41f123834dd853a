import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Client as NeonClient, Pool as NeonPool, neonConfig } from '@neondatabase/serverless';
import { sql } from 'drizzle-orm';
import { drizzle as drizzleNeon } from 'drizzle-orm/neon-serverless';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import pg from 'pg';
import ws from 'ws';
import { type Config, type DatabaseDriver, databaseDriverFor, hasAuthority } from '../config';
import { nameStatements, unnameStatements } from './named-statements';
import { type DataDirLock, lockDataDir } from './pglite-lock';
import { CONNECT_TIMEOUT_MS, guardPoolClient } from './pool-clients';
import * as schema from './schema';

export type Schema = typeof schema;
/** The one drizzle object every other file uses; it does not say which driver runs underneath. */
export type Database = PgDatabase<PgQueryResultHKT, Schema>;
/** What `db.transaction(fn)` hands to `fn`. */
export type Transaction = Parameters<Parameters<Database['transaction']>[0]>[0];
/** Anything queries can run on: the database or a transaction. */
export type Queryable = Database | Transaction;

export interface DatabaseHandle {
  db: Database;
  driver: DatabaseDriver;
  /** `select 1`, for /health. */
  ping(): Promise<void>;
  /**
   * Runs `fn` on a connection of its own holding `pg_advisory_lock(key)`, so only one process at a
   * time does it (migrations). The connection has no query timeout: the wait for the lock and a
   * migration's statements take as long as they take. PGlite is one connection in one process: the
   * lock is still taken.
   */
  withAdvisoryLock<T>(key: number, fn: (db: Database) => Promise<T>): Promise<T>;
  /**
   * LISTEN on `channel` over a connection of its own (re-opened after a drop), calling `onNotify` for
   * each NOTIFY; returns the unsubscribe. Only the plain `pg` driver has it: PGlite is one process
   * (in-process wake-ups suffice) and Neon's pooler does not keep sessions.
   */
  listen?(channel: string, onNotify: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** postgres:// URL; none selects PGlite. */
  url?: string | undefined;
  /** PGlite data directory; `memory://` (or undefined with no url) for an in-memory database. */
  pgliteDir?: string | undefined;
  poolSize?: number;
  /**
   * pg and Neon drivers: how long a query of the pool may go unanswered before it fails and its
   * connection is closed (DATABASE_QUERY_TIMEOUT_MS; default 30 s).
   */
  queryTimeoutMs?: number;
  /**
   * pg driver: send data statements as named prepared statements (default true). Off for a pooler in
   * transaction mode that cannot keep them (PgBouncer before 1.21, or without max_prepared_statements).
   */
  namedStatements?: boolean;
}

export function pgliteDirFor(dataDir: string): string {
  return join(dataDir, 'pglite');
}

/**
 * The database a process is configured for, for a start-up message: the variable that chose it and
 * where it is, never the URL's credentials or query (which can carry a password).
 */
export function describeDatabase(config: Pick<Config, 'database' | 'dataDir'>): string {
  const { url } = config.database;
  if (databaseDriverFor(url) === 'pglite')
    return `the embedded database in ${pgliteDirFor(config.dataDir)} (DATA_DIR)`;
  let where = 'DATABASE_URL';
  try {
    const parsed = new URL(url as string);
    // Only past `//` is the path not the rest of the URL, credentials included.
    where = hasAuthority(url as string)
      ? `${parsed.protocol}//${parsed.host}${parsed.pathname}`
      : parsed.protocol;
  } catch {}
  return `the database at DATABASE_URL (${where}, credentials not shown)`;
}

export async function createDatabase(options: DatabaseOptions): Promise<DatabaseHandle> {
  const driver = databaseDriverFor(options.url);
  if (driver === 'pglite') return createPglite(options.pgliteDir);
  return createPool(driver, options.url as string, {
    max: options.poolSize ?? 10,
    queryTimeoutMs: options.queryTimeoutMs ?? 30_000,
    namedStatements: options.namedStatements ?? true,
  });
}

async function createPglite(dir: string | undefined): Promise<DatabaseHandle> {
  const onDisk = dir && !dir.startsWith('memory://') ? dir : undefined;
  let lock: DataDirLock | undefined;
  if (onDisk) {
    mkdirSync(onDisk, { recursive: true });
    lock = await lockDataDir(onDisk);
  }
  let client: PGlite;
  try {
    client = await PGlite.create(onDisk);
  } catch (error) {
    lock?.release();
    throw error;
  }
  const db = drizzlePglite(client, { schema }) as unknown as Database;
  // PGlite is one session, where advisory locks are re-entrant: hold an in-process lock per key instead.
  const held = new Map<number, Promise<unknown>>();
  return {
    db,
    driver: 'pglite',
    async ping() {
      await client.query('select 1');
    },
    async withAdvisoryLock(key, fn) {
      const previous = held.get(key) ?? Promise.resolve();
      const run = previous.catch(() => {}).then(() => fn(db));
      held.set(key, run);
      try {
        return await run;
      } finally {
        if (held.get(key) === run) held.delete(key);
      }
    },
    async close() {
      try {
        if (!client.closed) await client.close();
      } finally {
        lock?.release();
        lock = undefined;
      }
    },
  };
}

interface PoolOptions {
  max: number;
  queryTimeoutMs: number;
  namedStatements: boolean;
}

async function createPool(
  driver: 'pg' | 'neon',
  url: string,
  { max, queryTimeoutMs, namedStatements }: PoolOptions,
): Promise<DatabaseHandle> {
  const bounds = { connectionTimeoutMillis: CONNECT_TIMEOUT_MS, query_timeout: queryTimeoutMs };
  // Neon's pooler runs in transaction mode: drizzle's prepared queries go unnamed there too.
  const statements = driver === 'pg' && namedStatements ? nameStatements : unnameStatements;
  let pool: pg.Pool | NeonPool;
  let wrap: (client: pg.Pool | pg.ClientBase) => Database;
  if (driver === 'neon') {
    // Node 20 has no global WebSocket; Neon's driver needs one.
    neonConfig.webSocketConstructor = ws;
    pool = new NeonPool({ connectionString: url, max, ...bounds });
    wrap = (client) => drizzleNeon({ client: client as unknown as NeonPool, schema }) as unknown as Database;
  } else {
    pool = new pg.Pool({ connectionString: url, max, keepAlive: true, ...bounds });
    wrap = (client) => drizzlePg({ client: client as pg.Pool, schema }) as unknown as Database;
  }
  pool.on('connect', (client: unknown) => {
    statements(client as pg.ClientBase);
    guardPoolClient(client as pg.PoolClient);
  });
  // An idle client that errors (server restart) must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  const db = wrap(pool as pg.Pool);
  let closed: Promise<void> | undefined;
  return {
    db,
    driver,
    async ping() {
      await db.execute(sql`select 1`);
    },
    async withAdvisoryLock(key, fn) {
      const config = { connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS };
      const client = (driver === 'neon' ? new NeonClient(config) : new pg.Client(config)) as pg.Client;
      client.on('error', () => {});
      statements(client);
      await client.connect();
      try {
        await client.query('select pg_advisory_lock($1)', [key]);
        try {
          return await fn(wrap(client));
        } finally {
          await client.query('select pg_advisory_unlock($1)', [key]);
        }
      } finally {
        await client.end().catch(() => {});
      }
    },
    ...(driver === 'pg'
      ? { listen: (channel: string, onNotify: () => void) => listen(url, channel, onNotify) }
      : {}),
    async close() {
      closed ??= pool.end();
      await closed;
    },
  };
}

/**
 * A dedicated client LISTENing on `channel`; reconnects with backoff (500 ms doubling to 30 s) until
 * unsubscribed. Never throws for a connection problem: callers keep polling meanwhile.
 */
async function listen(url: string, channel: string, onNotify: () => void): Promise<() => Promise<void>> {
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`not a channel name: ${channel}`);
  let stopped = false;
  let client: pg.Client | undefined;
  let retry: NodeJS.Timeout | undefined;
  let delayMs = 500;
  const retryLater = (lost: pg.Client) => {
    // Once per lost client: its 'end' and a failed connect both land here.
    if (stopped || client !== lost) return;
    client = undefined;
    retry = setTimeout(() => void connect(), delayMs);
    retry.unref();
    delayMs = Math.min(delayMs * 2, 30_000);
  };
  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: url });
    next.on('notification', () => onNotify());
    next.on('error', () => {});
    next.on('end', () => retryLater(next));
    client = next;
    try {
      await next.connect();
      await next.query(`listen ${channel}`);
      delayMs = 500;
      // Work may have been queued while no one listened.
      onNotify();
    } catch {
      retryLater(next);
      await next.end().catch(() => {});
    }
  };
  await connect();
  return async () => {
    stopped = true;
    clearTimeout(retry);
    await client?.end().catch(() => {});
    client = undefined;
  };
}

/** Runs raw SQL and returns its rows; every driver answers with `{ rows }`, which drizzle types as unknown. */
export async function selectRows<T extends Record<string, unknown>>(
  db: Queryable,
  query: Parameters<Database['execute']>[0],
): Promise<T[]> {
  const result = (await db.execute(query)) as unknown as { rows: T[] };
  return result.rows;
}
