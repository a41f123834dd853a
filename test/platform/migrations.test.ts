import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { selectRows } from '../../lib/db/client';
import { MIGRATIONS_FOLDER, migrateDatabase, pendingMigrations } from '../../lib/db/migrate';
import { customers } from '../../lib/db/schema';
import { createAgent } from '../policy/fixtures';
import { createTestDatabase, databaseTargets, type TestDatabase } from '../support/db';

interface Journal {
  entries: Array<{ tag: string }>;
}

/** A copy of the migrations folder whose journal ends before `tag`: the database as an older release left it. */
async function migrationsBefore(tag: string): Promise<{ folder: string; remove(): Promise<void> }> {
  const folder = await mkdtemp(join(tmpdir(), 'oc-migrations-'));
  await cp(MIGRATIONS_FOLDER, folder, { recursive: true });
  const journalPath = join(folder, 'meta', '_journal.json');
  const journal = JSON.parse(await readFile(journalPath, 'utf8')) as Journal;
  const index = journal.entries.findIndex((entry) => entry.tag === tag);
  if (index < 0) throw new Error(`no migration ${tag}`);
  await writeFile(journalPath, JSON.stringify({ ...journal, entries: journal.entries.slice(0, index) }));
  return { folder, remove: () => rm(folder, { recursive: true, force: true }) };
}

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

  /** A new database with the migrations before `tag` applied, as an older release left it. */
  async function migratedUpTo(tag: string): Promise<TestDatabase> {
    const database = await createTestDatabase(target, { migrate: false });
    opened.push(database);
    const older = await migrationsBefore(tag);
    try {
      await migrateDatabase(database.handle, older.folder);
    } finally {
      await older.remove();
    }
    return database;
  }

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

  it('pendingMigrations names what a database lacks: all on an empty one, the newer ones on an older one, none once applied', async () => {
    const journal = JSON.parse(
      await readFile(join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8'),
    ) as Journal;
    const tags = journal.entries.map((entry) => entry.tag);
    const empty = await createTestDatabase(target, { migrate: false });
    opened.push(empty);
    expect(await pendingMigrations(empty.handle)).toEqual(tags);

    const older = await migratedUpTo('0010_start_keys');
    expect(await pendingMigrations(older.handle)).toEqual(tags.slice(tags.indexOf('0010_start_keys')));
    await migrateDatabase(older.handle);
    expect(await pendingMigrations(older.handle)).toEqual([]);
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

  it("keep a /reset made before forum topics had their own as every topic's floor", async () => {
    const database = await migratedUpTo('0008_topic_history_reset');
    const { db } = database.handle;
    const agent = await createAgent(db);
    await db.execute(sql`insert into telegram_chats (agent_id, chat_id, type, history_reset_at) values
      (${agent.id}, -1001, 'supergroup', '2026-03-01T10:00:00.123Z'), (${agent.id}, -1002, 'supergroup', null)`);
    await migrateDatabase(database.handle);

    const chats = await selectRows<{ chat_id: string; floor: Date | null; map: unknown }>(
      db,
      sql`select chat_id::text, (topic_history_reset_at ->> '*')::timestamptz as floor, topic_history_reset_at as map
        from telegram_chats where agent_id = ${agent.id} order by telegram_chats.chat_id desc`,
    );
    expect(chats.map(({ chat_id, map }) => ({ chat_id, hasFloor: map !== null }))).toEqual([
      { chat_id: '-1001', hasFloor: true },
      { chat_id: '-1002', hasFloor: false },
    ]);
    expect(new Date(chats[0]!.floor!).toISOString()).toBe('2026-03-01T10:00:00.123Z');
  });

  it('give the runs queued before 0010 their concurrency keys, so they keep their place', async () => {
    const database = await migratedUpTo('0010_start_keys');
    const { db } = database.handle;
    // A queued run on two keys, a running one (its item an invoke), and a queued one with no keys.
    await db.execute(sql`insert into executor_runs (id, function_id, event, status, concurrency, created_at) values
      ('00000000-0000-4000-8000-000000000001', 'f', '{}', 'queued', '[{"key":"f:a","limit":1},{"key":"f:b","limit":2}]', now()),
      ('00000000-0000-4000-8000-000000000002', 'f', '{}', 'running', '[{"key":"f:a","limit":1}]', now()),
      ('00000000-0000-4000-8000-000000000003', 'g', '{}', 'queued', '[]', now())`);
    await db.execute(sql`insert into executor_queue (run_id, kind, available_at) values
      ('00000000-0000-4000-8000-000000000001', 'start', now()),
      ('00000000-0000-4000-8000-000000000002', 'invoke', now()),
      ('00000000-0000-4000-8000-000000000003', 'start', now())`);
    await migrateDatabase(database.handle);

    const keys = await selectRows<{ key: string; run_id: string }>(
      db,
      sql`select k.key, q.run_id::text from executor_start_keys k join executor_queue q on q.id = k.item_id order by k.key`,
    );
    expect(keys).toEqual([
      { key: 'f:a', run_id: '00000000-0000-4000-8000-000000000001' },
      { key: 'f:b', run_id: '00000000-0000-4000-8000-000000000001' },
    ]);
    // The keys go with their item.
    await db.execute(sql`delete from executor_queue where run_id = '00000000-0000-4000-8000-000000000001'`);
    const left = await selectRows<{ n: number }>(db, sql`select count(*)::int as n from executor_start_keys`);
    expect(left[0]?.n).toBe(0);
  });

  it('count the deliveries stored before 0016 as sent, so the webhook outbox sweep sends none again', async () => {
    const database = await migratedUpTo('0016_webhook_event_sent');
    const { db } = database.handle;
    const [customer] = await db.insert(customers).values({ name: 'Hooked' }).returning();
    await db.execute(sql`insert into webhook_deliveries (customer_id, event_id, event_type, payload, body, created_at)
      values (${customer?.id}, 'evt-old', 'agent.started', '{}', '{}', '2026-03-01T10:00:00.123Z')`);
    await migrateDatabase(database.handle);

    const rows = await selectRows<{ sent: Date | null }>(
      db,
      sql`select event_sent_at as sent from webhook_deliveries`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.sent).not.toBeNull();
    // A delivery stored after the migration starts unsent: the column keeps no default.
    await db.execute(sql`insert into webhook_deliveries (customer_id, event_id, event_type, payload, body)
      values (${customer?.id}, 'evt-new', 'agent.started', '{}', '{}')`);
    const fresh = await selectRows<{ sent: Date | null }>(
      db,
      sql`select event_sent_at as sent from webhook_deliveries where event_id = 'evt-new'`,
    );
    expect(fresh[0]?.sent).toBeNull();
  });
});
