import { type SQL, sql } from 'drizzle-orm';
import { type Queryable, selectRows } from '../db/client';
import { roundsByKey } from '../group-commit';
import { wakeQueuedOn } from './runs';
import { iso } from './sql-values';

/**
 * The two writes every run makes while one of its queue items is leased, in the shape group commit
 * needs: many runs per statement. Each row is written only while `workerId` still holds the item's
 * lease and the run is running; runs are locked in id order (with their items) like every change to a
 * run, so two batches cannot deadlock on each other. Each returns, per input, whether it was written.
 */

export interface LeasedItem {
  runId: string;
  itemId: number;
}

/** Step results the SDK checkpointed mid-invocation (usually one), stored in order. */
export interface Checkpoint extends LeasedItem {
  steps: { stepId: string; name: string | null; data: unknown }[];
}

/** A run whose last invocation returned its result. */
export interface CompletedRun extends LeasedItem {
  output: unknown;
}

/**
 * The `input` rows whose run is running and whose queue item `workerId` still leases, with the run
 * and the item locked in run-id order.
 */
function leasedInput(workerId: string, columns: SQL): SQL {
  return sql`select ${columns} from input i
    join executor_runs r on r.id = i.run_id
    join executor_queue q on q.id = i.item_id and q.run_id = r.id and q.leased_by = ${workerId}
    where r.status = 'running'
    order by r.id
    for update of r, q`;
}

/** Rows of a round, numbered, as the JSON `jsonb_to_recordset` reads. */
function numbered<T extends LeasedItem>(round: T[], extra: (item: T) => Record<string, unknown>): string {
  return JSON.stringify(
    round.map((item, ord) => ({ ord, run_id: item.runId, item_id: item.itemId, ...extra(item) })),
  );
}

/**
 * Stores checkpointed steps, each bumping its run's step sequence. A run with several steps in the
 * batch (a checkpoint of several, or parallel steps checkpointing at once) is split into rounds, so
 * each statement updates a run once and the steps keep their order. A checkpoint is written when all
 * of its steps are.
 */
export async function storeCheckpoints(
  db: Queryable,
  checkpoints: Checkpoint[],
  workerId: string,
  now: number,
): Promise<boolean[]> {
  const steps = checkpoints.flatMap((checkpoint, index) =>
    checkpoint.steps.map((step) => ({ ...step, runId: checkpoint.runId, itemId: checkpoint.itemId, index })),
  );
  const failed = new Set<number>();
  for (const round of roundsByKey(steps, (step) => step.runId)) {
    const rows = numbered(round, (step) => ({
      step_id: step.stepId,
      name: step.name,
      data: step.data === undefined ? null : step.data,
    }));
    const live = await selectRows<{ ord: number }>(
      db,
      sql`with input as (
            select * from jsonb_to_recordset(${rows}::jsonb)
              as x(ord int, run_id uuid, item_id bigint, step_id text, name text, data jsonb)),
          live as (${leasedInput(workerId, sql`r.id, q.attempt, q.meta, i.ord`)}),
          seq as (
            update executor_runs r set step_seq = r.step_seq + 1 from live where r.id = live.id
            returning r.id, r.step_seq),
          stored as (
            insert into executor_steps (run_id, step_id, name, op, status, data, attempts, seq, started_at, ended_at)
            select i.run_id, i.step_id, i.name, 'StepRun', 'completed', i.data, live.attempt + 1, seq.step_seq,
                   to_timestamp(coalesce((live.meta->>'firstAttemptAt')::double precision, ${now}::double precision) / 1000),
                   ${iso(now)}::timestamptz
            from live join seq on seq.id = live.id join input i on i.ord = live.ord
            on conflict (run_id, step_id) do nothing)
          select ord from live`,
    );
    const liveOrds = new Set(live.map((row) => Number(row.ord)));
    round.forEach((step, ord) => {
      if (!liveOrds.has(ord)) failed.add(step.index);
    });
  }
  return checkpoints.map((_, index) => !failed.has(index));
}

/**
 * Completes runs: status, output and end time, their pending work, waits, cancel rules and
 * concurrency slots go, in one statement per batch; then runs queued on a freed slot come due.
 */
export async function completeRuns(
  db: Queryable,
  runs: CompletedRun[],
  workerId: string,
  now: number,
): Promise<boolean[]> {
  const written = new Map<CompletedRun, boolean>();
  const released: string[] = [];
  for (const round of roundsByKey(runs, (run) => run.runId)) {
    const rows = numbered(round, (run) => ({ output: run.output === undefined ? null : run.output }));
    const [row] = await selectRows<{ ords: number[] | null; keys: string[] | null }>(
      db,
      sql`with input as (
            select * from jsonb_to_recordset(${rows}::jsonb) as x(ord int, run_id uuid, item_id bigint, output jsonb)),
          live as (${leasedInput(workerId, sql`r.id, i.ord, i.output`)}),
          ended as (
            update executor_runs r set status = 'completed', ended_at = ${iso(now)}::timestamptz, output = live.output
            from live where r.id = live.id returning r.id),
          queue as (delete from executor_queue where run_id in (select id from ended)),
          waits as (delete from executor_waits where run_id in (select id from ended)),
          cancels as (delete from executor_cancels where run_id in (select id from ended)),
          released as (delete from executor_concurrency where run_id in (select id from ended) returning key)
          select (select json_agg(ord) from live) as ords, (select json_agg(key) from released) as keys`,
    );
    const liveOrds = new Set((row?.ords ?? []).map(Number));
    for (const [ord, run] of round.entries()) written.set(run, liveOrds.has(ord));
    released.push(...(row?.keys ?? []));
  }
  await wakeQueuedOn(db, released, now);
  return runs.map((run) => written.get(run) === true);
}
