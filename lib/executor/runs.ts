import { randomUUID } from 'node:crypto';
import { type SQL, sql } from 'drizzle-orm';
import { type Queryable, selectRows } from '../db/client';
import type { CompiledFunction } from './function-config';
import { iso, json } from './sql-values';
import type { EventPayload } from './types';

/** How long a function's idempotency key blocks a second run of the same key. */
export const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000;

export interface RunContext {
  now: number;
  /**
   * Where the concurrency keys of the runs this transaction ends are collected, for its owner to wake
   * the runs queued on them last (`endingRuns`). Without it, each end wakes at once.
   */
  released?: string[] | undefined;
  /** Emits an event from inside a transaction (the function.failed event); returns nothing. */
  emit(tx: Queryable, event: EventPayload): Promise<void>;
}

/** The concurrency keys and throttle key a run of `fn` for `event` holds, fixed when it is created. */
function flowControlOf(fn: CompiledFunction, event: EventPayload) {
  const scope = { event };
  const concurrency = fn.concurrency.map((rule) => ({
    limit: rule.limit,
    key: `${rule.scope === 'fn' ? fn.id : rule.scope}:${rule.key ? rule.key.key(scope) : ''}`,
  }));
  const throttleKey = fn.throttle ? `${fn.id}:${fn.throttle.key ? fn.throttle.key.key(scope) : ''}` : null;
  return { concurrency, throttleKey, gated: concurrency.length > 0 || throttleKey !== null };
}

/**
 * Creates a run of `fn` for `event`, honouring idempotency. A run without flow control goes straight
 * to an `invoke` item; one with concurrency or throttle waits in a `start` item until it may begin.
 * Returns the run id, or undefined when the idempotency key was already used.
 */
export async function createRun(
  tx: Queryable,
  fn: CompiledFunction,
  event: EventPayload,
  eventRowId: string | null,
  now: number,
): Promise<string | undefined> {
  const [runId] = await createRuns(tx, [{ fn, event, eventRowId }], now);
  return runId;
}

/**
 * `createRun` for several runs: those without idempotency or cancel rules (nearly all) are written
 * with one statement, their queue items included. Returns each run's id, in order.
 */
export async function createRuns(
  tx: Queryable,
  plans: { fn: CompiledFunction; event: EventPayload; eventRowId: string | null }[],
  now: number,
): Promise<(string | undefined)[]> {
  const ids: (string | undefined)[] = plans.map(() => randomUUID());
  const rows: Record<string, unknown>[] = [];
  for (const [index, { fn, event, eventRowId }] of plans.entries()) {
    const runId = ids[index] as string;
    if (fn.idempotency) {
      const key = `${fn.id}:${fn.idempotency.key({ event })}`;
      const claimed = await selectRows(
        tx,
        sql`insert into executor_idempotency (key, run_id, created_at) values (${key}, ${runId}, ${iso(now)}::timestamptz)
            on conflict (key) do update set run_id = excluded.run_id, created_at = excluded.created_at
            where executor_idempotency.created_at < ${iso(now - IDEMPOTENCY_WINDOW_MS)}::timestamptz
            returning run_id`,
      );
      if (claimed.length === 0) {
        ids[index] = undefined;
        continue;
      }
    }
    const { concurrency, throttleKey, gated } = flowControlOf(fn, event);
    rows.push({
      id: runId,
      function_id: fn.id,
      event_id: eventRowId,
      event,
      gated,
      concurrency,
      throttle_key: throttleKey,
    });
    for (const rule of fn.cancel) {
      await tx.execute(
        sql`insert into executor_cancels (run_id, event_name, expression, expires_at)
            values (${runId}, ${rule.event}, ${rule.expression?.source ?? null},
                    ${rule.timeoutMs === undefined ? null : iso(now + rule.timeoutMs)}::timestamptz)`,
      );
    }
  }
  if (rows.length > 0) {
    await tx.execute(
      sql`with input as (
            select * from jsonb_to_recordset(${json(rows)}::jsonb)
              as x(id uuid, function_id text, event_id uuid, event jsonb, gated boolean, concurrency jsonb, throttle_key text)),
          run as (
            insert into executor_runs (id, function_id, event_id, event, status, concurrency, throttle_key, created_at, started_at)
            select id, function_id, event_id, event, case when gated then 'queued' else 'running' end,
                   concurrency, throttle_key, ${iso(now)}::timestamptz,
                   case when gated then null else ${iso(now)}::timestamptz end
            from input
            returning id, status),
          queued as (
            insert into executor_queue (run_id, kind, step_id, available_at)
            select id, case when status = 'queued' then 'start' else 'invoke' end, '', ${iso(now)}::timestamptz from run
            returning id, run_id, kind)
          insert into executor_start_keys (key, item_id)
          select distinct c->>'key', q.id
          from queued q join input i on i.id = q.run_id cross join lateral jsonb_array_elements(i.concurrency) c
          where q.kind = 'start'
          on conflict do nothing`,
    );
  }
  return ids;
}

/**
 * Locks the run row for the rest of the transaction: every change to one run is serialised. With
 * `lease`, also says whether that queue item is still leased by that worker (same round trip).
 */
export async function lockRun(
  tx: Queryable,
  runId: string,
  lease?: { itemId: number; workerId: string },
): Promise<
  { status: string; functionId: string; event: EventPayload; stepSeq: number; owned: boolean } | undefined
> {
  const [row] = await selectRows<{
    status: string;
    function_id: string;
    event: EventPayload;
    step_seq: number;
    owned: boolean;
  }>(
    tx,
    lease
      ? sql`select r.status, r.function_id, r.event, r.step_seq,
              exists (select 1 from executor_queue q where q.id = ${lease.itemId} and q.leased_by = ${lease.workerId} for update) as owned
            from executor_runs r where r.id = ${runId} for update`
      : sql`select status, function_id, event, step_seq, true as owned from executor_runs where id = ${runId} for update`,
  );
  return row
    ? {
        status: row.status,
        functionId: row.function_id,
        event: row.event,
        stepSeq: row.step_seq,
        owned: row.owned,
      }
    : undefined;
}

/** Stores a step's result (never twice: a stored step is final). */
export async function recordStep(
  tx: Queryable,
  runId: string,
  step: {
    id: string;
    name: string | undefined;
    op: string;
    status: 'completed' | 'failed';
    data?: unknown;
    error?: unknown;
    attempts: number;
    startedAt: number | undefined;
  },
  now: number,
): Promise<void> {
  await tx.execute(
    sql`with seq as (update executor_runs set step_seq = step_seq + 1 where id = ${runId} returning step_seq)
        insert into executor_steps (run_id, step_id, name, op, status, data, error, attempts, seq, started_at, ended_at)
        select ${runId}, ${step.id}, ${step.name ?? null}, ${step.op}, ${step.status},
               ${step.data === undefined ? null : json(step.data)}::jsonb, ${step.error === undefined ? null : json(step.error)}::jsonb,
               ${step.attempts}, seq.step_seq, ${step.startedAt === undefined ? null : iso(step.startedAt)}::timestamptz,
               ${iso(now)}::timestamptz
        from seq
        on conflict (run_id, step_id) do nothing`,
  );
}

/** When nothing of the run is pending any more, asks the SDK what comes next (a discovery invocation). */
export async function discoverIfIdle(tx: Queryable, runId: string, now: number): Promise<boolean> {
  const rows = await selectRows<{ id: string }>(
    tx,
    sql`insert into executor_queue (run_id, kind, step_id, available_at)
        select ${runId}, 'invoke', '', ${iso(now)}::timestamptz
        where not exists (select 1 from executor_queue where run_id = ${runId})
          and not exists (select 1 from executor_waits where run_id = ${runId})
        on conflict do nothing
        returning id`,
  );
  return rows.length > 0;
}

/**
 * Ends a run: its pending work, waits, cancel rules and concurrency slots go; runs queued on the keys
 * it held wake, at once, or, with `released` (see `endingRuns`), when the transaction has done the
 * rest of its work; a run still queued wakes those queued behind it at once.
 */
export async function endRun(
  tx: Queryable,
  runId: string,
  status: 'completed' | 'failed' | 'cancelled',
  result: { output?: unknown; error?: unknown },
  now: number,
  released?: string[],
): Promise<void> {
  // One round trip: the run's row, its pending work, waits, cancel rules and concurrency slots.
  const freed = await selectRows<{ key: string }>(
    tx,
    sql`with ended as (
          update executor_runs set status = ${status}, ended_at = ${iso(now)}::timestamptz,
            output = ${result.output === undefined ? null : json(result.output)}::jsonb,
            error = ${result.error === undefined ? null : json(result.error)}::jsonb
          where id = ${runId} returning id),
        queue as (delete from executor_queue where run_id = ${runId} returning id, kind),
        waits as (delete from executor_waits where run_id = ${runId}),
        cancels as (delete from executor_cancels where run_id = ${runId}),
        -- A queued run ending (cancelled) frees no slot, but runs queued behind it on its keys, first
        -- in, first out, may start now. Woken here, skipping items locked by others (being started,
        -- woken or deleted already): waiting for one, or for the keys' locks, could deadlock with a
        -- worker that holds them and waits for this run's deleted item.
        behind as (
          update executor_queue q set available_at = ${iso(now)}::timestamptz
          where q.id in (
            select l.id from executor_queue l
            where l.id = any(array(
                select b.item_id from executor_start_keys b where b.key = any(array(
                  select k.key from executor_start_keys k
                  where k.item_id = any(array(select id from queue where kind = 'start'))))))
              and l.kind = 'start' and l.leased_by is null and l.run_id <> ${runId}
            for update skip locked))
        delete from executor_concurrency where run_id = ${runId} returning key`,
  );
  const keys = freed.map((row) => row.key);
  if (released) released.push(...keys);
  else await wakeQueuedOn(tx, keys, now);
}

/**
 * The statement (or CTE) that makes the start items of queued runs matching `which` (a condition on
 * the run `r` and its item `q`) due at `now`, so they try for a slot again. Not leased: a worker
 * trying it already will decide with what it sees.
 */
export function wakeQueuedStarts(now: number, which: SQL): SQL {
  return sql`update executor_queue q set available_at = ${iso(now)}::timestamptz
    from executor_runs r
    where q.run_id = r.id and q.kind = 'start' and q.leased_by is null and r.status = 'queued' and ${which}`;
}

/**
 * The statement (or CTE) that makes the start items of the runs queued on one of the concurrency keys
 * `keys` (a subquery of keys) due at `now` (`which`: a further condition on the item `q`), found by
 * their keys (executor_start_keys), not by reading every queued run. The keys, then the ids, are each
 * one array computed first: as joins or `in`s, the planner may read the whole queue (or all the keys)
 * and match each row.
 */
export function wakeStartsOnKeys(now: number, keys: SQL, which: SQL = sql`true`): SQL {
  return sql`update executor_queue q set available_at = ${iso(now)}::timestamptz
    where q.id = any(array(select k.item_id from executor_start_keys k where k.key = any(array(${keys}))))
      and q.kind = 'start' and q.leased_by is null and ${which}`;
}

/**
 * Runs queued on concurrency keys that just freed a slot may start now.
 *
 * A `tryStart` deciding on one of the keys at this moment holds its advisory lock, and may have seen
 * the slot still taken; its item is leased, so a wake now would pass it by, and the run would wait
 * for its one-second re-check. So the keys' locks are taken first (in key order, as `tryStart` takes
 * them), and the wake is a statement of its own, whose snapshot sees what that `tryStart` decided.
 * In a transaction the locks are held until commit, so a `tryStart` after this one sees the slot
 * free; on its own (`completeRuns`, whose release is committed already), the statement only waits.
 */
export async function wakeQueuedOn(db: Queryable, keys: string[], now: number): Promise<void> {
  if (keys.length === 0) return;
  const released = sql`select jsonb_array_elements_text(${json([...new Set(keys)])}::jsonb)`;
  await db.execute(
    sql`select count(pg_advisory_xact_lock(hashtext(key)))
        from (select key from (${released}) r(key) order by key) k`,
  );
  await db.execute(wakeStartsOnKeys(now, released));
}

/**
 * Runs `work`, which may end runs (and, through the events it emits, cancel more), collecting their
 * freed concurrency keys; then wakes the runs queued on them, as the transaction's last statements.
 * The wake holds the keys' advisory locks until commit (see `wakeQueuedOn`): taken any earlier, the
 * transaction could wait for a run's row while holding a key that a worker starting that run, holding
 * its row, waits for.
 */
export async function endingRuns<T>(
  tx: Queryable,
  now: number,
  work: (released: string[]) => Promise<T>,
): Promise<T> {
  const released: string[] = [];
  const result = await work(released);
  await wakeQueuedOn(tx, released, now);
  return result;
}

/** Fails a run and emits `inngest/function.failed`, so the function's onFailure handler runs. */
export async function failRun(
  tx: Queryable,
  runId: string,
  run: { functionId: string; event: EventPayload },
  error: unknown,
  context: RunContext,
): Promise<void> {
  await endRun(tx, runId, 'failed', { error }, context.now, context.released);
  await context.emit(tx, {
    id: randomUUID(),
    name: 'inngest/function.failed',
    data: { function_id: run.functionId, run_id: runId, error: normaliseError(error), event: run.event },
    ts: context.now,
  });
}

/** The SDK's failure handler parses `{ name, message, stack }`. */
export function normaliseError(error: unknown): Record<string, unknown> {
  if (error && typeof error === 'object') {
    const record = error as Record<string, unknown>;
    const message = typeof record.message === 'string' ? record.message : JSON.stringify(error);
    return { ...record, name: typeof record.name === 'string' ? record.name : 'Error', message };
  }
  return { name: 'Error', message: String(error) };
}
