import { type SQL, sql } from 'drizzle-orm';
import { type Queryable, selectRows } from '../db/client';
import { iso } from './sql-values';
import type { EventPayload, QueueItem } from './types';

/** What an `invoke` item's claim read of its run: no second read before calling the SDK. */
export interface ClaimedRun {
  functionId: string;
  event: EventPayload;
  status: string;
  /** No step of the run is stored yet: the SDK is called with an empty memo, without reading it. */
  fresh: boolean;
}

export type ClaimedItem = QueueItem & { run?: ClaimedRun | undefined };

interface QueueRow extends Record<string, unknown> {
  id: string | number;
  run_id: string;
  kind: QueueItem['kind'];
  step_id: string;
  attempt: number;
  meta: QueueItem['meta'];
  function_id: string | null;
  status: string | null;
  event: EventPayload | null;
  step_seq: number | null;
}

/**
 * Leases to `workerId` the `limit` oldest items due at `now` that no worker holds (by due time, then
 * id: a chat's events fan out, and its runs start, in the order they were queued), skipping those
 * another transaction has locked. An invoke item comes with its run (function, event, status, whether
 * any step is stored).
 *
 * The items are picked once, in a materialized CTE. Written as `update … where id in (select … limit n
 * for update skip locked)`, the planner may run the subquery again for each row of the queue (a
 * nested-loop semi join, which statistics taken while the queue was short make it choose). Each run
 * skips what other transactions hold at that moment, so picks other rows: under load one claim leased
 * hundreds of items beyond its limit, not the oldest ones, and a chat's later event fanned out first.
 */
export async function claimItems(db: Queryable, options: ClaimOptions): Promise<ClaimedItem[]> {
  if (options.limit <= 0) return [];
  const rows = await selectRows<QueueRow>(db, claimStatement(options));
  return rows.map((row) => ({
    id: Number(row.id),
    runId: row.run_id,
    kind: row.kind,
    stepId: row.step_id,
    attempt: row.attempt,
    meta: row.meta,
    run:
      row.function_id !== null && row.status !== null && row.event !== null
        ? {
            functionId: row.function_id,
            event: row.event,
            status: row.status,
            fresh: Number(row.step_seq ?? 0) === 0,
          }
        : undefined,
  }));
}

export interface ClaimOptions {
  limit: number;
  now: number;
  leaseMs: number;
  workerId: string;
}

/** The statement of `claimItems` (its plan is tested: test/executor/claim.test.ts). */
export function claimStatement(options: ClaimOptions): SQL {
  const { limit, now } = options;
  return sql`with picked as materialized (
      select id from executor_queue
      where available_at <= ${iso(now)}::timestamptz and (leased_until is null or leased_until < ${iso(now)}::timestamptz)
      order by available_at, id
      limit ${limit}
      for update skip locked),
    claimed as (
      update executor_queue q set leased_until = ${iso(now + options.leaseMs)}::timestamptz, leased_by = ${options.workerId}
      from picked where q.id = picked.id
      returning q.id, q.run_id, q.kind, q.step_id, q.attempt, q.meta)
    select c.id, c.run_id, c.kind, c.step_id, c.attempt, c.meta,
           r.function_id, r.status, r.event, r.step_seq
    from claimed c left join executor_runs r on c.kind = 'invoke' and r.id = c.run_id::uuid
    order by c.id`;
}
