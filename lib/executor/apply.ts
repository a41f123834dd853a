import { type SQL, sql } from 'drizzle-orm';
import { type Queryable, selectRows } from '../db/client';
import { sleepUntil } from './duration';
import type { CompiledFunction } from './function-config';
import {
  discoverIfIdle,
  endRun,
  failRun,
  lockRun,
  type RunContext,
  recordStep,
  wakeQueuedStarts,
  wakeStartsOnKeys,
} from './runs';
import { iso, json } from './sql-values';
import type { EventPayload, InvokeOutcome, OutgoingOp, QueueItem, Registry, StepMeta } from './types';

export interface ApplyOptions extends RunContext {
  workerId: string;
  fn: CompiledFunction;
  /** Backoff before attempt `attempt + 1`. */
  backoff(attempt: number): number;
}

/** Reschedules the item for its next attempt, or returns false when attempts are exhausted. */
async function retryItem(
  tx: Queryable,
  item: QueueItem,
  options: ApplyOptions,
  retryAt: number | undefined,
  lastError: unknown,
  step?: { id: string; name: string | undefined },
): Promise<boolean> {
  const next = item.attempt + 1;
  if (next >= options.fn.maxAttempts) return false;
  const at = retryAt ?? options.now + options.backoff(item.attempt);
  const meta: StepMeta = {
    ...(item.meta ?? {}),
    ...(step?.name ? { name: step.name } : {}),
    firstAttemptAt: item.meta?.firstAttemptAt ?? options.now,
    lastError,
  };
  // A step that failed inside a discovery call is retried by its own id (stepId), as Inngest does.
  await tx.execute(
    sql`update executor_queue set attempt = ${next}, available_at = ${iso(at)}::timestamptz,
          step_id = ${step?.id ?? item.stepId},
          leased_until = null, leased_by = null, meta = ${json(meta)}::jsonb
        where id = ${item.id}`,
  );
  return true;
}

/**
 * Applies one invocation's outcome to the run, in one transaction holding the run's row lock. A
 * result from a worker whose lease was lost is dropped: the step's new owner reports it.
 */
export async function applyOutcome(
  tx: Queryable,
  item: QueueItem,
  outcome: InvokeOutcome,
  options: ApplyOptions,
): Promise<void> {
  const run = await lockRun(tx, item.runId, { itemId: item.id, workerId: options.workerId });
  if (run && !run.owned) return;
  if (run?.status !== 'running') {
    await tx.execute(sql`delete from executor_queue where id = ${item.id}`);
    return;
  }
  const now = options.now;
  const startedAt = item.meta?.firstAttemptAt ?? now;

  if (outcome.type === 'complete') {
    await endRun(tx, item.runId, 'completed', { output: outcome.output }, now, options.released);
    return;
  }
  if (outcome.type === 'error') {
    if (outcome.retriable && (await retryItem(tx, item, options, outcome.retryAt, outcome.error))) return;
    await failRun(tx, item.runId, run, outcome.error, options);
    return;
  }

  let retried = false;
  for (const op of outcome.ops) {
    const name = op.displayName ?? op.name;
    switch (op.op) {
      case 'StepRun':
      case 'Step':
        await recordStep(
          tx,
          item.runId,
          {
            id: op.id,
            name,
            op: 'StepRun',
            status: 'completed',
            data: op.data ?? null,
            attempts: item.attempt + 1,
            startedAt,
          },
          now,
        );
        break;
      case 'StepError':
        retried =
          !outcome.noRetry &&
          (await retryItem(tx, item, options, outcome.retryAt, op.error, { id: op.id, name }));
        if (!retried) await recordFailedStep(tx, item, op, options, startedAt);
        break;
      case 'StepFailed':
        await recordFailedStep(tx, item, op, options, startedAt);
        break;
      case 'StepPlanned':
        await tx.execute(
          sql`insert into executor_queue (run_id, kind, step_id, available_at, meta)
              select ${item.runId}, 'invoke', ${op.id}, ${iso(now)}::timestamptz, ${json({ name })}::jsonb
              where not exists (select 1 from executor_steps where run_id = ${item.runId} and step_id = ${op.id})
              on conflict do nothing`,
        );
        break;
      case 'Sleep': {
        const wakeAt = sleepUntil(String(op.name ?? ''), now);
        await tx.execute(
          sql`insert into executor_queue (run_id, kind, step_id, available_at, meta)
              values (${item.runId}, 'sleep', ${op.id}, ${iso(wakeAt)}::timestamptz, ${json({ name: op.displayName, firstAttemptAt: now })}::jsonb)
              on conflict do nothing`,
        );
        break;
      }
      case 'WaitForEvent': {
        const timeout = typeof op.opts?.timeout === 'string' ? op.opts.timeout : '1w';
        const expiresAt = sleepUntil(timeout, now);
        const expression = typeof op.opts?.if === 'string' ? op.opts.if : null;
        await tx.execute(
          sql`insert into executor_waits (run_id, step_id, name, event_name, expression, expires_at)
              values (${item.runId}, ${op.id}, ${op.displayName ?? null}, ${String(op.name)}, ${expression}, ${iso(expiresAt)}::timestamptz)
              on conflict do nothing`,
        );
        await tx.execute(
          sql`insert into executor_queue (run_id, kind, step_id, available_at, meta)
              values (${item.runId}, 'wait-timeout', ${op.id}, ${iso(expiresAt)}::timestamptz, ${json({ name: op.displayName, firstAttemptAt: now })}::jsonb)
              on conflict do nothing`,
        );
        break;
      }
      case 'RunComplete':
        await endRun(tx, item.runId, 'completed', { output: op.data ?? null }, now, options.released);
        return;
      default:
        await failRun(
          tx,
          item.runId,
          run,
          {
            name: 'UnsupportedOpError',
            message: `The embedded executor does not support the "${op.op}" step (${name ?? op.id})`,
          },
          options,
        );
        return;
    }
  }
  if (!retried) {
    await tx.execute(sql`delete from executor_queue where id = ${item.id}`);
    await discoverIfIdle(tx, item.runId, now);
  }
}

async function recordFailedStep(
  tx: Queryable,
  item: QueueItem,
  op: OutgoingOp,
  options: ApplyOptions,
  startedAt: number,
): Promise<void> {
  await recordStep(
    tx,
    item.runId,
    {
      id: op.id,
      name: op.displayName ?? op.name,
      op: 'StepRun',
      status: 'failed',
      error: op.error ?? { name: 'Error', message: 'step failed' },
      attempts: item.attempt + 1,
      startedAt,
    },
    options.now,
  );
}

/** A `sleep` or `wait-timeout` item came due: the step completes with null (a timed-out wait). */
export async function completeTimer(
  tx: Queryable,
  item: QueueItem,
  workerId: string,
  now: number,
): Promise<void> {
  const run = await lockRun(tx, item.runId);
  const owned = await tx.execute(
    sql`delete from executor_queue where id = ${item.id} and leased_by = ${workerId} returning id`,
  );
  if ((owned as unknown as { rows: unknown[] }).rows.length === 0 || !run || run.status !== 'running') return;
  if (item.kind === 'wait-timeout') {
    const waiting = await tx.execute(
      sql`delete from executor_waits where run_id = ${item.runId} and step_id = ${item.stepId} returning step_id`,
    );
    if ((waiting as unknown as { rows: unknown[] }).rows.length === 0) return;
  }
  await recordStep(
    tx,
    item.runId,
    {
      id: item.stepId,
      name: item.meta?.name,
      op: item.kind === 'sleep' ? 'Sleep' : 'WaitForEvent',
      status: 'completed',
      data: null,
      attempts: 1,
      startedAt: item.meta?.firstAttemptAt,
    },
    now,
  );
  await discoverIfIdle(tx, item.runId, now);
}

/** What a run that just started is invoked with (it has no step results yet). */
export interface StartedRun {
  functionId: string;
  event: EventPayload;
}

/** The run a `start` item is for, read under its row lock. */
type StartingRun = {
  status: string;
  function_id: string;
  event: EventPayload;
  concurrency: { key: string; limit: number }[] | null;
  throttle_key: string | null;
};

/**
 * A `start` item: the run may begin when its concurrency keys have a free slot and its throttle
 * window allows. Returns the run when it started (the item became its first `invoke`).
 *
 * A run with concurrency keys only (a reply per chat, say) takes two statements: one locks the run and
 * then its keys' advisory locks (in key order), so slot counting is serialised per key across
 * processes; the next, whose snapshot is taken once those locks are held, checks first-in-first-out
 * and the slots and either starts the run or puts its item back, in one go. A throttled run takes the
 * general path.
 */
export async function tryStart(
  tx: Queryable,
  item: QueueItem,
  options: { workerId: string; now: number; registry: Registry },
): Promise<StartedRun | undefined> {
  const [run] = await selectRows<StartingRun & { locked: number }>(
    tx,
    sql`with run as (
          select status, function_id, event, concurrency, throttle_key from executor_runs
          where id = ${item.runId} for update),
        keys as (
          select distinct c->>'key' as key from run, jsonb_array_elements(run.concurrency) c
          where run.status = 'queued' and run.throttle_key is null),
        locked as (select count(pg_advisory_xact_lock(hashtext(key))) as n from (select key from keys order by key) k)
        select run.*, (select n from locked)::int as locked from run`,
  );
  if (run?.status !== 'queued') {
    await tx.execute(sql`delete from executor_queue where id = ${item.id}`);
    return undefined;
  }
  if (run.throttle_key && options.registry.get(run.function_id)?.throttle) {
    return tryStartThrottled(tx, item, options, run);
  }
  const now = options.now;
  const [decided] = await selectRows<{ blocked: boolean }>(
    tx,
    sql`with rules as (
          select c->>'key' as key, (c->>'limit')::int as lim
          from jsonb_array_elements(${json(run.concurrency ?? [])}::jsonb) c),
        verdict as (
          -- First in, first out: an older run waiting on the same key goes first (replies stay in
          -- order); then a free slot.
          select coalesce(bool_or(
            exists (select 1 from executor_start_keys k where k.key = rules.key and k.item_id < ${item.id})
            or (select count(*) from executor_concurrency ec where ec.key = rules.key) >= rules.lim), false) as blocked
          from rules),
        slots as (
          insert into executor_concurrency (key, run_id)
          select key, ${item.runId} from rules where not (select blocked from verdict)
          on conflict do nothing),
        started as (
          update executor_runs set status = 'running', started_at = ${iso(now)}::timestamptz
          where id = ${item.runId} and not (select blocked from verdict)),
        moved as (
          update executor_queue set
            kind = case when (select blocked from verdict) then kind else 'invoke' end,
            available_at = case when (select blocked from verdict) then ${iso(now + 1_000)}::timestamptz else available_at end,
            leased_until = case when (select blocked from verdict) then null else leased_until end,
            leased_by = case when (select blocked from verdict) then null else leased_by end
          where id = ${item.id}),
        -- A run that starts no longer waits on its keys.
        unkeyed as (delete from executor_start_keys where item_id = ${item.id} and not (select blocked from verdict)),
        -- Runs queued behind this one may start too when a key allows more than one at a time.
        woken as (${wakeStartsOnKeys(
          now,
          sql`select key from rules where rules.lim > 1`,
          sql`not (select blocked from verdict) and q.available_at > ${iso(now)}::timestamptz`,
        )})
        select blocked from verdict`,
  );
  if (decided?.blocked !== false) return undefined;
  return { functionId: run.function_id, event: run.event };
}

/**
 * `tryStart` for a throttled run (`run` is locked and queued): its concurrency keys, then its
 * throttle window, step by step.
 */
async function tryStartThrottled(
  tx: Queryable,
  item: QueueItem,
  options: { workerId: string; now: number; registry: Registry },
  run: StartingRun,
): Promise<StartedRun | undefined> {
  const now = options.now;
  const concurrency = run.concurrency ?? [];
  const throttleKey = run.throttle_key;
  const started: StartedRun = { functionId: run.function_id, event: run.event };
  const block = async (until: number) => {
    await tx.execute(
      sql`update executor_queue set available_at = ${iso(until)}::timestamptz, leased_until = null, leased_by = null where id = ${item.id}`,
    );
    return undefined;
  };
  // Serialises slot counting per key across processes (PGlite transactions are serial already): every
  // key at once, in key order, as `tryStart` and the wake of a freed slot take them (no deadlock).
  if (concurrency.length > 0) {
    await tx.execute(
      sql`select count(pg_advisory_xact_lock(hashtext(key)))
          from (select distinct c->>'key' as key from jsonb_array_elements(${json(concurrency)}::jsonb) c order by key) k`,
    );
  }
  for (const rule of concurrency) {
    // First in, first out: an older run waiting on the same key goes first (replies stay in order);
    // then a free slot. Blocked runs are woken when a slot frees up; the fallback re-check covers
    // other processes.
    const [slot] = await selectRows<{ older: boolean; used: number }>(
      tx,
      sql`select exists (select 1 from executor_start_keys where key = ${rule.key} and item_id < ${item.id}) as older,
                 (select count(*)::int from executor_concurrency where key = ${rule.key}) as used`,
    );
    if (slot?.older || (slot?.used ?? 0) >= rule.limit) return block(now + 1_000);
  }
  const throttle = options.registry.get(run.function_id)?.throttle;
  if (throttleKey && throttle) {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${throttleKey}))`);
    if (await olderWaiting(tx, item.id, sql`r.throttle_key = ${throttleKey}`)) return block(now + 1_000);
    const window = (await tx.execute(
      sql`select started_at from executor_runs where throttle_key = ${throttleKey}
          and started_at > ${iso(now - throttle.periodMs)}::timestamptz order by started_at`,
    )) as unknown as { rows: { started_at: Date | string }[] };
    const capacity = throttle.limit + throttle.burst;
    if (window.rows.length >= capacity) {
      const oldest = window.rows[window.rows.length - capacity];
      return block(new Date(oldest?.started_at ?? now).getTime() + throttle.periodMs);
    }
  }
  for (const rule of concurrency) {
    await tx.execute(
      sql`insert into executor_concurrency (key, run_id) values (${rule.key}, ${item.runId}) on conflict do nothing`,
    );
  }
  await tx.execute(
    sql`with started as (
          update executor_runs set status = 'running', started_at = ${iso(now)}::timestamptz where id = ${item.runId}),
        unkeyed as (delete from executor_start_keys where item_id = ${item.id})
        update executor_queue set kind = 'invoke' where id = ${item.id}`,
  );
  // The runs queued behind this one may start now if the limit allows more than one.
  for (const rule of concurrency) {
    await tx.execute(
      wakeStartsOnKeys(now, sql`select ${rule.key}::text`, sql`q.available_at > ${iso(now)}::timestamptz`),
    );
  }
  if (throttleKey) await wakeWaiting(tx, now, sql`r.throttle_key = ${throttleKey}`);
  return started;
}

/** A `start` item older than `itemId` whose queued run shares the key: it goes first. */
function olderWaitingQuery(itemId: number, sharesKey: SQL): SQL {
  return sql`select 1 from executor_queue q join executor_runs r on r.id = q.run_id
      where q.kind = 'start' and q.id < ${itemId} and r.status = 'queued' and ${sharesKey} limit 1`;
}

async function olderWaiting(tx: Queryable, itemId: number, sharesKey: SQL): Promise<boolean> {
  const rows = await selectRows(tx, olderWaitingQuery(itemId, sharesKey));
  return rows.length > 0;
}

async function wakeWaiting(tx: Queryable, now: number, sharesKey: SQL): Promise<void> {
  await tx.execute(wakeQueuedStarts(now, sql`q.available_at > ${iso(now)}::timestamptz and ${sharesKey}`));
}
