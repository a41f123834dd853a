import { type SQL, sql } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { AppError } from './errors';

/**
 * Keyset pagination, newest first: the cursor is the (created_at, id) of the last row returned,
 * opaque to clients (base64url). Stable under inserts, unlike offsets.
 */

export interface CursorPage<T> {
  items: T[];
  nextCursor: string | null;
}

interface Keyed {
  createdAt: Date;
  id: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function encodeCursor(row: Keyed): string {
  return Buffer.from(`${row.createdAt.toISOString()}|${row.id}`).toString('base64url');
}

export function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const createdAt = at ? new Date(at) : undefined;
  if (!createdAt || Number.isNaN(createdAt.getTime()) || !id || !UUID.test(id)) {
    throw new AppError('validation_error', 'query.cursor: not a cursor this API returned', {
      details: { issues: [{ field: 'query.cursor', message: 'not a cursor this API returned' }] },
    });
  }
  return { createdAt, id };
}

/** `(created_at, id) < cursor` for a table with those columns; undefined without a cursor. */
export function cursorCondition(
  table: { createdAt: PgColumn; id: PgColumn },
  cursor: string | undefined,
): SQL | undefined {
  if (!cursor) return undefined;
  const after = decodeCursor(cursor);
  return sql`(${table.createdAt}, ${table.id}) < (${after.createdAt.toISOString()}::timestamptz, ${after.id}::uuid)`;
}

/** Rows were fetched with `limit + 1`: the extra one only says whether there is a next page. */
export function pageOf<Row extends Keyed, T>(
  rows: Row[],
  limit: number,
  map: (row: Row) => T,
): CursorPage<T> {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { items: page.map(map), nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
}

export function isUuid(value: string): boolean {
  return UUID.test(value);
}
