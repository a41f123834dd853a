import { type SQL, sql } from 'drizzle-orm';
import { type Queryable, selectRows } from '../db/client';
import { EVENT_DEDUPE_WINDOW_MS } from './events';
import { IDEMPOTENCY_WINDOW_MS } from './runs';
import { iso } from './sql-values';

export interface PruneOptions {
  /** The clock's now (epoch ms). */
  now: number;
  /** Ended runs and their events older than this are deleted. */
  historyMs: number;
  /** Rows per statement. Default 1000. */
  batchSize?: number;
  /** Statements per table per call, so one call never loops for long. Default 50. */
  maxBatches?: number;
}

export interface PruneResult {
  runs: number;
  steps: number;
  events: number;
  eventIds: number;
  idempotency: number;
}

/**
 * Deletes the engine's history past its windows, in bounded batches (each its own short statement):
 * ended runs with their steps, events no live run or pending fan-out needs, expired event-id dedupe
 * rows and idempotency keys. Rows another worker holds are skipped (SKIP LOCKED), so two workers
 * pruning at once do not wait on each other or on the runs they work on. A live run (queued or
 * running) never loses its row, its steps or its event.
 */
export async function pruneHistory(db: Queryable, options: PruneOptions): Promise<PruneResult> {
  const { now, historyMs } = options;
  const limit = Math.max(1, Math.floor(options.batchSize ?? 1000));
  const maxBatches = Math.max(1, Math.floor(options.maxBatches ?? 50));
  const historyCutoff = iso(now - historyMs);
  const result: PruneResult = { runs: 0, steps: 0, events: 0, eventIds: 0, idempotency: 0 };

  /** Runs `batch` until it deletes fewer than `limit` rows or `maxBatches` ran; sums its counts. */
  const repeat = async (batch: () => Promise<{ deleted: number; extra?: number }>) => {
    let deleted = 0;
    let extra = 0;
    for (let round = 0; round < maxBatches; round += 1) {
      const counts = await batch();
      deleted += counts.deleted;
      extra += counts.extra ?? 0;
      if (counts.deleted < limit) break;
    }
    return { deleted, extra };
  };

  // Ended runs first (their events are then unreferenced), with their steps in the same statement.
  // An ended run's status never changes back and no step is written for a run that is not running.
  const runs = await repeat(async () => {
    const [row] = await selectRows<{ runs: number | string; steps: number | string }>(
      db,
      pruneRunsStatement(historyCutoff, limit),
    );
    return { deleted: Number(row?.runs ?? 0), extra: Number(row?.steps ?? 0) };
  });
  result.runs = runs.deleted;
  result.steps = runs.extra;

  // Events a run still kept was created from (a live one, or one that ended within the history), or
  // still waiting for fan-out (an 'event' queue item whose run_id is the event's id), stay whatever
  // their age.
  result.events = (
    await repeat(async () => {
      const rows = await selectRows(db, pruneEventsStatement(historyCutoff, limit));
      return { deleted: rows.length };
    })
  ).deleted;

  /** Deletes the rows of a window table (`key` column, `time` column) from before `cutoff`. */
  const expire = async (table: WindowTable, key: string, time: string, cutoff: number) =>
    (
      await repeat(async () => {
        const rows = await selectRows(db, expireStatement(table, key, time, iso(cutoff), limit));
        return { deleted: rows.length };
      })
    ).deleted;
  // Past the dedupe window a seen id no longer blocks a resend (storeEvents refreshes such a row).
  result.eventIds = await expire(
    'executor_event_ids',
    'external_id',
    'seen_at',
    now - EVENT_DEDUPE_WINDOW_MS,
  );
  result.idempotency = await expire('executor_idempotency', 'key', 'created_at', now - IDEMPOTENCY_WINDOW_MS);

  return result;
}

// Each statement picks its batch once, in a materialized CTE, and deletes what it picked. Written as
// `delete … where id in (select … limit n for update skip locked)`, the planner may run the pick again
// for each row it joins (as the executor's claim did, lib/executor/claim.ts), and each run skips what
// other transactions hold at that moment: a batch past its limit. The plans are tested
// (test/executor/prune.test.ts).

/** Ended runs before `cutoff` (ISO), oldest first, and their steps. */
export function pruneRunsStatement(cutoff: string, limit: number): SQL {
  return sql`with doomed as materialized (
      select id from executor_runs
      where status in ('completed', 'failed', 'cancelled') and ended_at < ${cutoff}::timestamptz
      order by ended_at, id
      limit ${limit}
      for update skip locked),
    runs as (delete from executor_runs where id in (select id from doomed) returning id),
    steps as (delete from executor_steps where run_id in (select id from runs) returning run_id)
    select (select count(*) from runs) as runs, (select count(*) from steps) as steps`;
}

/** Events received before `cutoff` that no run was created from and no fan-out waits for. */
export function pruneEventsStatement(cutoff: string, limit: number): SQL {
  return sql`with doomed as materialized (
      select e.id from executor_events e
      where e.received_at < ${cutoff}::timestamptz
        and not exists (select 1 from executor_runs r where r.event_id = e.id)
        and not exists (select 1 from executor_queue q where q.kind = 'event' and q.run_id = e.id)
      order by e.received_at, e.id
      limit ${limit}
      for update of e skip locked)
    delete from executor_events where id in (select id from doomed)
    returning id`;
}

type WindowTable = 'executor_event_ids' | 'executor_idempotency';

/** The rows of a window table (`key` column, `time` column) from before `cutoff` (ISO). */
export function expireStatement(
  table: WindowTable,
  key: string,
  time: string,
  cutoff: string,
  limit: number,
): SQL {
  const [name, keyColumn, timeColumn] = [sql.identifier(table), sql.identifier(key), sql.identifier(time)];
  return sql`with doomed as materialized (
      select ${keyColumn} as doomed_key from ${name}
      where ${timeColumn} < ${cutoff}::timestamptz
      order by ${timeColumn}, ${keyColumn}
      limit ${limit}
      for update skip locked)
    delete from ${name} where ${keyColumn} in (select doomed_key from doomed)
    returning 1 as deleted`;
}
