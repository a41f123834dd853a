import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { selectRows } from '../../lib/db/client';
import { migrateDatabase } from '../../lib/db/migrate';
import { customers } from '../../lib/db/schema';
import { createTestDatabase, databaseTargets, type TestDatabase } from '../support/db';

const EXPECTED_TABLES = [
  'agents',
  'api_keys',
  'audit_log',
  'credentials',
  'customers',
  'pairing_requests',
  'telegram_chats',
  'telegram_messages',
  'webhook_deliveries',
  'webhook_delivery_attempts',
];

describe.each(databaseTargets())('migrations on %s', (target) => {
  const opened: TestDatabase[] = [];
  afterAll(async () => {
    await Promise.all(opened.map((database) => database.destroy()));
  });

  it('apply cleanly to an empty database, and again as a no-op', async () => {
    const database = await createTestDatabase(target, { migrate: false });
    opened.push(database);
    await migrateDatabase(database.handle);
    const { db } = database.handle;
    await db.insert(customers).values({ name: 'Acme' });
    await migrateDatabase(database.handle);

    const tables = await selectRows<{ table_name: string }>(
      db,
      sql`select table_name from information_schema.tables where table_schema = 'public' order by table_name`,
    );
    const names = tables.map((row) => row.table_name);
    for (const table of EXPECTED_TABLES) expect(names).toContain(table);
    const rows = await db.select().from(customers);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ name: 'Acme', plan: 'free', status: 'active', maxAgents: 1 });
  });

  it('run safely from two connections at once', async () => {
    const database = await createTestDatabase(target, { migrate: false });
    opened.push(database);
    await Promise.all([migrateDatabase(database.handle), migrateDatabase(database.handle)]);
    const applied = await selectRows<{ n: number }>(
      database.handle.db,
      sql`select count(*)::int as n from drizzle.__drizzle_migrations`,
    );
    const files = (await import('../../drizzle/meta/_journal.json', { with: { type: 'json' } })).default
      .entries;
    expect(applied[0]?.n).toBe(files.length);
  });
});
