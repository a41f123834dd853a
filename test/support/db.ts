import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { createDatabase, type DatabaseHandle } from '../../lib/db/client';
import { migrateDatabase } from '../../lib/db/migrate';

export type DatabaseTarget = 'pglite' | 'postgres';

/** PGlite always; the real PostgreSQL too when global setup found it. Use with describe.each. */
export function databaseTargets(): DatabaseTarget[] {
  return inject('postgresAdminUrl') ? ['pglite', 'postgres'] : ['pglite'];
}

export interface TestDatabase {
  target: DatabaseTarget;
  handle: DatabaseHandle;
  /** postgres:// URL of the fresh database (undefined for PGlite). */
  url: string | undefined;
  /** Closes the handle and drops the database. */
  destroy(): Promise<void>;
}

function withDatabaseName(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

/**
 * A fresh, empty database of its own: an in-memory PGlite, or a new database on the real server
 * (created from the admin URL, dropped on destroy). Nothing is shared between test files.
 */
export async function createEmptyDatabase(
  target: DatabaseTarget,
): Promise<Omit<TestDatabase, 'handle'> & { handle?: never }> {
  if (target === 'pglite') {
    return { target, url: undefined, destroy: async () => {} };
  }
  const adminUrl = inject('postgresAdminUrl');
  if (!adminUrl) throw new Error('the real PostgreSQL is not reachable');
  const name = `oc_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  return {
    target,
    url: withDatabaseName(adminUrl, name),
    async destroy() {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      await client.query(`drop database if exists ${name} with (force)`);
      await client.end();
    },
  };
}

/** A fresh database with every migration applied. */
export async function createTestDatabase(
  target: DatabaseTarget,
  options: { migrate?: boolean } = {},
): Promise<TestDatabase> {
  const empty = await createEmptyDatabase(target);
  const handle = await createDatabase({ url: empty.url, pgliteDir: 'memory://', poolSize: 5 });
  if (options.migrate !== false) await migrateDatabase(handle);
  return {
    target,
    url: empty.url,
    handle,
    async destroy() {
      await handle.close();
      await empty.destroy();
    },
  };
}
