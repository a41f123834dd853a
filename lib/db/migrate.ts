import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import type { NeonDatabase } from 'drizzle-orm/neon-serverless';
import { migrate as migrateNeon } from 'drizzle-orm/neon-serverless/migrator';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import type { PgliteDatabase } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { PROJECT_ROOT } from '../project-root';
import { type DatabaseHandle, selectRows } from './client';

export const MIGRATIONS_FOLDER = join(PROJECT_ROOT, 'drizzle');

/** Arbitrary constant: the advisory lock that serialises migrations across processes. */
const MIGRATION_LOCK_KEY = 727_001;

/**
 * Applies the committed drizzle-kit migrations (or those of `migrationsFolder`: tests stop at an
 * earlier one); safe to run from several processes at once.
 */
export async function migrateDatabase(
  handle: DatabaseHandle,
  migrationsFolder = MIGRATIONS_FOLDER,
): Promise<void> {
  const config = { migrationsFolder };
  await handle.withAdvisoryLock(MIGRATION_LOCK_KEY, async (db) => {
    switch (handle.driver) {
      case 'pglite':
        return migratePglite(db as unknown as PgliteDatabase, config);
      case 'pg':
        return migratePg(db as unknown as NodePgDatabase, config);
      case 'neon':
        return migrateNeon(db as unknown as NeonDatabase, config);
    }
  });
}

/**
 * The migrations of `migrationsFolder` the database lacks, by file name: drizzle's migrator applies
 * those created after the last one it recorded in `drizzle.__drizzle_migrations` (none: all).
 */
export async function pendingMigrations(
  handle: DatabaseHandle,
  migrationsFolder = MIGRATIONS_FOLDER,
): Promise<string[]> {
  const [recorded] = await selectRows<{ present: boolean }>(
    handle.db,
    sql`select to_regclass('drizzle.__drizzle_migrations') is not null as present`,
  );
  let lastApplied = Number.NEGATIVE_INFINITY;
  if (recorded?.present) {
    const [last] = await selectRows<{ created_at: string | number | null }>(
      handle.db,
      sql`select max(created_at) as created_at from drizzle.__drizzle_migrations`,
    );
    if (last?.created_at !== null && last?.created_at !== undefined) lastApplied = Number(last.created_at);
  }
  const journal = JSON.parse(readFileSync(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as {
    entries: { tag: string; when: number }[];
  };
  return journal.entries.filter((entry) => entry.when > lastApplied).map((entry) => entry.tag);
}
