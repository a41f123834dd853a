import { join } from 'node:path';
import type { NeonDatabase } from 'drizzle-orm/neon-serverless';
import { migrate as migrateNeon } from 'drizzle-orm/neon-serverless/migrator';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import type { PgliteDatabase } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { PROJECT_ROOT } from '../project-root';
import type { DatabaseHandle } from './client';

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
