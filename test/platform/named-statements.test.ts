import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDatabase, type Database, selectRows } from '../../lib/db/client';
import { statementName } from '../../lib/db/named-statements';
import { customers } from '../../lib/db/schema';
import { createTestDatabase, type TestDatabase } from '../support/db';

describe('statementName', () => {
  it('gives one text one name, and another text another', () => {
    const first = statementName('select 1 as named_statement_test_a');
    expect(first).toMatch(/^oc_\d+$/);
    expect(statementName('select 1 as named_statement_test_a')).toBe(first);
    expect(statementName('select 1 as named_statement_test_b')).not.toBe(first);
  });

  it.each([
    'begin',
    'commit',
    'create table t (id int)',
    'alter table t add column x int',
    'listen openclaw_executor_wake',
    'update t set x = 1; insert into t values (2)',
  ])('leaves %s unnamed', (text) => {
    expect(statementName(text)).toBeUndefined();
  });
});

describe.skipIf(!inject('postgresAdminUrl'))('named statements on PostgreSQL', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
  });
  afterAll(async () => {
    await database?.destroy();
  });

  /** The statements prepared on the connection that runs this query. */
  async function prepared(db: Database = database.handle.db): Promise<string[]> {
    const rows = await db.transaction((tx) =>
      selectRows<{ statement: string }>(tx, sql`select statement from pg_prepared_statements`),
    );
    return rows.map((row) => row.statement);
  }

  it('prepares a drizzle query once per connection and runs it with other values after', async () => {
    const { db } = database.handle;
    const names = ['named-a', 'named-b', 'named-c'];
    for (const name of names) {
      await db.insert(customers).values({ name, email: `${name}@example.com` });
    }
    // Every connection of the pool runs the same select with each value.
    const found = await Promise.all(
      names.flatMap((name) =>
        Array.from({ length: 4 }, () =>
          db.select({ name: customers.name }).from(customers).where(eq(customers.name, name)),
        ),
      ),
    );
    expect(found.map((rows) => rows[0]?.name)).toEqual(names.flatMap((name) => Array(4).fill(name)));
    const statements = await prepared();
    expect(statements.some((text) => text.startsWith('select "name" from "customers"'))).toBe(true);
  });

  it('keeps working after a prepared statement fails, in a transaction or not', async () => {
    const { db } = database.handle;
    const [customer] = await db
      .insert(customers)
      .values({ name: 'by-id', email: 'by-id@example.com' })
      .returning({ id: customers.id });
    const byId = (id: string) =>
      db.select({ name: customers.name }).from(customers).where(eq(customers.id, id));
    expect(await byId(customer?.id as string)).toEqual([{ name: 'by-id' }]);
    await expect(byId('not-a-uuid')).rejects.toThrow(/uuid/);
    await expect(
      db.transaction(async (tx) => {
        await tx.select({ name: customers.name }).from(customers).where(eq(customers.id, 'not-a-uuid'));
      }),
    ).rejects.toThrow(/uuid/);
    expect(await byId(customer?.id as string)).toEqual([{ name: 'by-id' }]);
  });

  it('sends every statement unnamed when DATABASE_NAMED_STATEMENTS is off (a transaction pooler)', async () => {
    const unnamed = await createDatabase({ url: database.url, poolSize: 1, namedStatements: false });
    try {
      const byName = unnamed.db
        .select({ name: customers.name })
        .from(customers)
        .where(eq(customers.name, sql.placeholder('name')))
        .prepare('named_statements_test');
      for (let i = 0; i < 3; i += 1) {
        await unnamed.db.select({ name: customers.name }).from(customers).where(eq(customers.name, 'x'));
        // A drizzle prepared query's own name is dropped too.
        expect(await byName.execute({ name: 'x' })).toEqual([]);
      }
      expect(await prepared(unnamed.db)).toEqual([]);
    } finally {
      await unnamed.close();
    }
  });
});
