import { type SQL, sql } from 'drizzle-orm';
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';
import { validationError } from './errors';

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

/** What `toISOString` writes for the times rows are created at (years 1970 to 9999). */
const CURSOR_TIME = /^(19[7-9]\d|[2-9]\d{3})-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  const [at, id, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  // A time PostgreSQL cannot take (year 0, +275760) would otherwise fail the query with a 500.
  const createdAt = at && CURSOR_TIME.test(at) ? new Date(at) : undefined;
  if (!createdAt || Number.isNaN(createdAt.getTime()) || !id || !UUID.test(id) || rest.length > 0) {
    throw validationError([{ field: 'query.cursor', message: 'not a cursor this API returned' }]);
  }
  return { createdAt, id };
}

/**
 * `(created_at, id) < cursor` for a table with those columns; undefined without a cursor.
 *
 * The cursor's time is the row's `created_at` in milliseconds (a JS Date), but PostgreSQL's `now()`
 * stores microseconds: comparing with the millisecond time would skip the rows created in the same
 * millisecond as the cursor's row, just after it. So the row's own stored time is read back by its
 * id (when it falls in the cursor's millisecond). If that row was deleted meanwhile, the end of its
 * millisecond is used instead: a row of that millisecond may then come twice, but none is skipped.
 */
export function cursorCondition(
  table: PgTable & { createdAt: PgColumn; id: PgColumn },
  cursor: string | undefined,
): SQL | undefined {
  if (!cursor) return undefined;
  const after = decodeCursor(cursor);
  const createdAt = sql.identifier(table.createdAt.name);
  const id = sql.identifier(table.id.name);
  // Only a row of the cursor's own millisecond is read back: a cursor made up with another tenant's
  // id and a later time must not order the caller's rows by that row's time (and so tell it exists,
  // and when it was made).
  const at = sql`${after.createdAt.toISOString()}::timestamptz`;
  const cursorTime = sql`coalesce(
    (select cursor_row.${createdAt} from ${table} as cursor_row where cursor_row.${id} = ${after.id}::uuid
      and cursor_row.${createdAt} >= ${at} and cursor_row.${createdAt} < ${at} + interval '1 millisecond'),
    ${at} + interval '999 microseconds')`;
  return sql`(${table.createdAt}, ${table.id}) < (${cursorTime}, ${after.id}::uuid)`;
}

/**
 * Rows were fetched with `limit + 1`: the extra one only says whether there is a next page. Rows
 * that are not keyed by `createdAt` and `id` (raw SQL rows) say what their key is with `keyOf`.
 */
export function pageOf<Row extends Keyed, T>(rows: Row[], limit: number, map: (row: Row) => T): CursorPage<T>;
export function pageOf<Row, T>(
  rows: Row[],
  limit: number,
  map: (row: Row) => T,
  keyOf: (row: Row) => Keyed,
): CursorPage<T>;
export function pageOf<Row, T>(
  rows: Row[],
  limit: number,
  map: (row: Row) => T,
  keyOf: (row: Row) => Keyed = (row) => row as Keyed,
): CursorPage<T> {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map(map),
    nextCursor: rows.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : null,
  };
}

export function isUuid(value: string): boolean {
  return UUID.test(value);
}
