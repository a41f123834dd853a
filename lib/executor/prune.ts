import { sql } from 'drizzle-orm';
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
      sql`with doomed as (
            select id from executor_runs
            where status in ('completed', 'failed', 'cancelled') and ended_at < ${historyCutoff}::timestamptz
            order by ended_at, id
            limit ${limit}
            for update skip locked),
          runs as (delete from executor_runs where id in (select id from doomed) returning id),
          steps as (delete from executor_steps where run_id in (select id from runs) returning run_id)
          select (select count(*) from runs) as runs, (select count(*) from steps) as steps`,
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
      const rows = await selectRows<{ id: string }>(
        db,
        sql`delete from executor_events where id in (
              select e.id from executor_events e
              where e.received_at < ${historyCutoff}::timestamptz
                and not exists (select 1 from executor_runs r where r.event_id = e.id)
                and not exists (
                  select 1 from executor_queue q where q.kind = 'event' and q.run_id = e.id)
              order by e.received_at, e.id
              limit ${limit}
              for update of e skip locked)
            returning id`,
      );
      return { deleted: rows.length };
    })
  ).deleted;

  /** Deletes the rows of a window table (`key` column, `time` column) from before `cutoff`. */
  const expire = async (table: string, key: string, time: string, cutoff: number) =>
    (
      await repeat(async () => {
        const rows = await selectRows(
          db,
          sql`delete from ${sql.identifier(table)} where ${sql.identifier(key)} in (
                select ${sql.identifier(key)} from ${sql.identifier(table)}
                where ${sql.identifier(time)} < ${iso(cutoff)}::timestamptz
                order by ${sql.identifier(time)}, ${sql.identifier(key)}
                limit ${limit}
                for update skip locked)
              returning 1 as deleted`,
        );
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
