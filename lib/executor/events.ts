import { randomUUID } from 'node:crypto';
import { type SQL, sql } from 'drizzle-orm';
import { type Queryable, selectRows } from '../db/client';
import type { WritesWithEvents } from '../jobs';
import { compileExpression } from './expression';
import type { CompiledFunction } from './function-config';
import {
  createRuns,
  discoverIfIdle,
  endRun,
  lockRun,
  type RunContext,
  recordStep,
  wakeQueuedOn,
} from './runs';
import { iso, json } from './sql-values';
import type { EventPayload, Registry } from './types';

export const EVENT_DEDUPE_WINDOW_MS = 24 * 60 * 60 * 1000;

/** What `inngest.send()` posts; the SDK fills `data` and `ts`. */
export interface IncomingEvent {
  id?: string | undefined;
  name: string;
  data?: Record<string, unknown>;
  ts?: number;
  user?: unknown;
  v?: string;
}

export interface StoredEvent {
  rowId: string;
  payload: EventPayload;
  duplicate: boolean;
}

/**
 * Stores one event durably; an `id` seen in the last 24 h is not stored twice (the first row's id is
 * returned, marked duplicate).
 */
export async function storeEvent(
  tx: Queryable,
  incoming: IncomingEvent,
  now: number,
  replayOf: string | null = null,
): Promise<StoredEvent> {
  const [stored] = await storeEvents(tx, [incoming], now, { replayOf });
  return stored as StoredEvent;
}

function payloadOf(incoming: IncomingEvent, externalId: string, now: number): EventPayload {
  return {
    id: externalId,
    name: incoming.name,
    data: incoming.data ?? {},
    ts: typeof incoming.ts === 'number' ? incoming.ts : now,
    ...(incoming.user !== undefined ? { user: incoming.user } : {}),
    ...(incoming.v !== undefined ? { v: incoming.v } : {}),
  };
}

/** A batch of events before any write: row ids, and which event of the batch claims each external id. */
interface DraftBatch {
  drafts: { event: IncomingEvent; rowId: string; externalId: string }[];
  /** External id -> index of the batch's first event with it; later ones are its duplicates. */
  claimant: Map<string, number>;
  claims: { external_id: string; event_id: string }[];
}

function draftBatch(incoming: IncomingEvent[]): DraftBatch {
  for (const event of incoming) {
    if (typeof event.name !== 'string' || event.name === '') throw new Error('event "name" is required');
  }
  const drafts = incoming.map((event) => {
    const rowId = randomUUID();
    return { event, rowId, externalId: event.id ? String(event.id) : rowId };
  });
  const claimant = new Map<string, number>();
  drafts.forEach((draft, index) => {
    if (draft.event.id && !claimant.has(draft.externalId)) claimant.set(draft.externalId, index);
  });
  const claims = [...claimant.entries()].map(([externalId, index]) => ({
    external_id: externalId,
    event_id: drafts[index]?.rowId as string,
  }));
  return { drafts, claimant, claims };
}

/** Each drafted event as stored, given the external ids an earlier event holds (`taken`). */
function resolveBatch(batch: DraftBatch, taken: Map<string, string>, now: number): StoredEvent[] {
  return batch.drafts.map((draft, index): StoredEvent => {
    const { event, externalId } = draft;
    if (event.id) {
      const earlier = taken.get(externalId);
      const first = batch.claimant.get(externalId) as number;
      if (earlier !== undefined || first !== index) {
        return {
          rowId: earlier ?? (batch.drafts[first]?.rowId as string),
          payload: { id: externalId, name: event.name, data: event.data ?? {}, ts: event.ts ?? now },
          duplicate: true,
        };
      }
    }
    return { rowId: draft.rowId, payload: payloadOf(event, externalId, now), duplicate: false };
  });
}

/**
 * The rows a batch may store: events without an id, and each id's first event in the batch (`claim`,
 * null for none); the statement drops those whose id an earlier event still holds.
 */
function candidatesOf(batch: DraftBatch, now: number) {
  return batch.drafts
    .filter((draft, index) => !draft.event.id || batch.claimant.get(draft.externalId) === index)
    .map((draft, ord) => ({
      id: draft.rowId,
      ord,
      claim: draft.event.id ? draft.externalId : null,
      payload: payloadOf(draft.event, draft.externalId, now),
    }));
}

/**
 * Claims external ids for the dedupe window (a claim past it is taken over); returns the ids claimed.
 * With `gate` (a relation of one text column, `external_id`), only the ids in it are claimed.
 */
function claimIds(claims: DraftBatch['claims'], now: number, gate?: SQL) {
  return sql`insert into executor_event_ids (external_id, event_id, seen_at)
    select external_id, event_id, ${iso(now)}::timestamptz
    from jsonb_to_recordset(${json(claims)}::jsonb) as x(external_id text, event_id uuid)
    ${gate ? sql`where external_id in (select external_id from (${gate}) gate)` : sql``}
    on conflict (external_id) do update set event_id = excluded.event_id, seen_at = excluded.seen_at
    where executor_event_ids.seen_at < ${iso(now - EVENT_DEDUPE_WINDOW_MS)}::timestamptz
    returning external_id`;
}

/** Inserts the events of `source`, a relation with columns `id uuid` and `payload jsonb`. */
function insertEvents(source: SQL, now: number, replayOf: string | null): SQL {
  return sql`insert into executor_events (id, external_id, name, data, payload, ts, received_at, replay_of)
    select id, payload->>'id', payload->>'name', payload->'data', payload, (payload->>'ts')::bigint,
           ${iso(now)}::timestamptz, ${replayOf}::uuid
    from ${source}`;
}

/**
 * Queues a fan-out item for each event of `rows` (a relation with columns `id`, the event's row id,
 * and `ord`, its place in the batch), in the batch's order: the queue's ids are the order the runs
 * start in, and a join's plan (a merge join on the events' text ids, say) need not keep it.
 */
function queueFanOut(rows: SQL, now: number): SQL {
  return sql`insert into executor_queue (run_id, kind, step_id, available_at)
    select id::uuid, 'event', '', ${iso(now)}::timestamptz from ${rows} order by ord`;
}

/** Adds to `taken` the row id of the event holding each of `ids`. */
async function readTakenIds(db: Queryable, ids: string[], taken: Map<string, string>): Promise<void> {
  if (ids.length === 0) return;
  const rows = await selectRows<{ external_id: string; event_id: string }>(
    db,
    sql`select external_id, event_id from executor_event_ids
        where external_id in (select jsonb_array_elements_text(${json(ids)}::jsonb))`,
  );
  for (const row of rows) taken.set(row.external_id, row.event_id);
}

/** Where stored events come from (a replay of an earlier event) and whom they wake. */
export interface StoreOptions {
  /** The event this one replays (`executor_events.replay_of`). */
  replayOf?: string | null;
  /** Wakes the workers LISTENing on this channel when the transaction commits, if anything new was stored. */
  notifyChannel?: string | undefined;
}

/**
 * Stores events durably, in order, in one statement whatever their number. An `id` seen in the last
 * 24 h (or earlier in the same batch) is not stored twice: the first row's id is returned, marked
 * duplicate.
 */
export function storeEvents(
  tx: Queryable,
  incoming: IncomingEvent[],
  now: number,
  options: StoreOptions = {},
): Promise<StoredEvent[]> {
  return writeEvents(tx, incoming, now, { ...options, queue: false });
}

/**
 * `storeEvents` then `enqueueFanOut` of the new ones, for a process that runs no executor loop, in
 * one statement (atomic on its own, so no transaction around it): the dedupe claims, the events,
 * their fan-out queue items, and with `notifyChannel` a wake-up for the workers listening there.
 */
export function storeAndQueueEvents(
  db: Queryable,
  incoming: IncomingEvent[],
  now: number,
  options: StoreOptions = {},
): Promise<StoredEvent[]> {
  return writeEvents(db, incoming, now, { ...options, queue: true });
}

/**
 * The one statement of `storeEvents` and `storeAndQueueEvents`: dedupe claims, events, optionally
 * their fan-out queue items and a NOTIFY. An external id held by an earlier event is read from the
 * statement's snapshot.
 */
async function writeEvents(
  db: Queryable,
  incoming: IncomingEvent[],
  now: number,
  options: StoreOptions & { queue: boolean },
): Promise<StoredEvent[]> {
  if (incoming.length === 0) return [];
  const batch = draftBatch(incoming);
  const candidates = candidatesOf(batch, now);
  const queued = options.queue
    ? sql`, queued as (${queueFanOut(sql`(select s.id, i.ord from stored s join input i on i.id = s.id) q`, now)} returning 1)`
    : sql``;
  // pg_notify runs once, and only when something was stored (the CTE is referenced by the result).
  const wake = options.notifyChannel
    ? sql`select 'woken' as kind, null as external_id, null as event_id
          from (select pg_notify(${options.notifyChannel}, '') from (select 1 from stored limit 1) q) w`
    : sql`select 'woken', null, null where false`;
  const result = await selectRows<{
    kind: 'claimed' | 'taken' | 'woken';
    external_id: string | null;
    event_id: string | null;
  }>(
    db,
    sql`with claims as (${claimIds(batch.claims, now)}),
        input as (
          select * from jsonb_to_recordset(${json(candidates)}::jsonb) as x(id uuid, ord int, claim text, payload jsonb)),
        stored as (
          ${insertEvents(sql`input where claim is null or claim in (select external_id from claims)`, now, options.replayOf ?? null)}
          returning id)
        ${queued}
        select 'claimed' as kind, external_id, null as event_id from claims
        union all
        -- One index probe per claimed id (a join had let the planner scan the whole table).
        select 'taken', taken.external_id, taken.event_id::text
        from input cross join lateral (
          select external_id, event_id from executor_event_ids where external_id = input.claim) taken
        where input.claim not in (select external_id from claims)
        union all
        ${wake}`,
  );
  const claimed = new Set<string>();
  const taken = new Map<string, string>();
  for (const row of result) {
    if (row.kind === 'claimed' && row.external_id) claimed.add(row.external_id);
    if (row.kind === 'taken' && row.external_id && row.event_id) taken.set(row.external_id, row.event_id);
  }
  // An id another transaction claimed and committed while this statement waited on it is not in
  // this statement's snapshot: read it now.
  const raced = batch.claims
    .map((claim) => claim.external_id)
    .filter((id) => !claimed.has(id) && !taken.has(id));
  await readTakenIds(db, raced, taken);
  return resolveBatch(batch, taken, now);
}

/**
 * `storeAndQueueEvents` in the caller's statement: its rows, the dedupe claims, the events and their
 * fan-out queue items are one statement, so they commit together or not at all, in one round trip.
 * Only the events whose id `gate` yields are stored (the caller's rows decide: an update already
 * stored yields none), so each event needs an `id`; the gate's `data` is merged into the event's.
 * Returns the rows of the caller's `select`.
 */
export async function storeAndQueueEventsWith<R extends Record<string, unknown>>(
  db: Queryable,
  statement: WritesWithEvents,
  incoming: IncomingEvent[],
  now: number,
  options: StoreOptions = {},
): Promise<R[]> {
  if (incoming.some((event) => !event.id)) throw new Error('an event stored with its rows needs an "id"');
  const batch = draftBatch(incoming);
  const candidates = candidatesOf(batch, now);
  // pg_notify is not a write, so nothing runs it unless the result refers to it: the one-time filter
  // below does, once, and only when something was stored.
  const wake = options.notifyChannel
    ? sql`, event_woken as (select pg_notify(${options.notifyChannel}, '') from (select 1 from event_stored limit 1) q)`
    : sql``;
  const source = sql`(
    select e.id, jsonb_set(e.payload, '{data}', (e.payload->'data') || coalesce(g.data, '{}'::jsonb)) as payload
    from event_input e
    join (select distinct on (external_id) external_id, data from event_gate) g on g.external_id = e.claim
    where e.claim in (select external_id from event_claims)) gated`;
  return selectRows<R>(
    db,
    sql`with ${statement.writes},
        event_gate as (${statement.gate}),
        event_claims as (${claimIds(batch.claims, now, sql`select external_id from event_gate`)}),
        event_input as (
          select * from jsonb_to_recordset(${json(candidates)}::jsonb) as x(id uuid, ord int, claim text, payload jsonb)),
        event_stored as (${insertEvents(source, now, options.replayOf ?? null)} returning id),
        event_queued as (${queueFanOut(sql`(select s.id, e.ord from event_stored s join event_input e on e.id = s.id) q`, now)} returning 1)
        ${wake}
        select result.* from (${statement.select}) result
        ${options.notifyChannel ? sql`where (select count(*) from event_woken) >= 0` : sql``}`,
  );
}

/** The system event of a cancelled run (`data`: function_id, run_id, error, event). */
export const FUNCTION_CANCELLED = 'inngest/function.cancelled';

/** Functions whose trigger matches the event (name and optional `if`). */
export function matchingFunctions(registry: Registry, event: EventPayload): CompiledFunction[] {
  const matches: CompiledFunction[] = [];
  for (const fn of registry.values()) {
    const hit = fn.eventTriggers.some(
      (trigger) =>
        trigger.event === event.name && (!trigger.expression || trigger.expression.test({ event })),
    );
    if (hit) matches.push(fn);
  }
  return matches;
}

/**
 * What events set off, as if one after the other: a run per matching function, the waits they satisfy
 * (step.waitForEvent) and the runs they cancel (cancelOn). Their runs are created together, and one
 * query finds the waits and cancel rules any of them matches. Runs in the caller's transaction;
 * returns each event's run ids.
 */
export async function fanOutAll(
  tx: Queryable,
  registry: Registry,
  events: StoredEvent[],
  context: RunContext,
): Promise<string[][]> {
  const now = context.now;
  const planned = events.flatMap((stored, index) =>
    matchingFunctions(registry, stored.payload).map((fn) => ({
      fn,
      event: stored.payload,
      eventRowId: stored.rowId,
      index,
    })),
  );
  const created = await createRuns(tx, planned, now);
  const runIds: string[][] = events.map(() => []);
  /** Which event of this batch created a run: a later event's cancel does not reach back before it. */
  const createdBy = new Map<string, number>();
  planned.forEach((plan, i) => {
    const runId = created[i];
    if (!runId) return;
    runIds[plan.index]?.push(runId);
    createdBy.set(runId, plan.index);
  });

  const names = [...new Set(events.map((stored) => stored.payload.name))];
  // The waits these events satisfy and the runs they cancel, in one round trip.
  const matched = await selectRows<{
    kind: 'wait' | 'cancel';
    event_name: string;
    run_id: string;
    step_id: string | null;
    name: string | null;
    expression: string | null;
    event: EventPayload;
  }>(
    tx,
    sql`with names as (select jsonb_array_elements_text(${json(names)}::jsonb) as name)
        select 'wait' as kind, w.event_name, w.run_id, w.step_id, w.name, w.expression, r.event from executor_waits w
        join executor_runs r on r.id = w.run_id
        where w.event_name in (select name from names) and w.expires_at > ${iso(now)}::timestamptz and r.status = 'running'
        union all
        select 'cancel' as kind, c.event_name, c.run_id, null, null, c.expression, r.event from executor_cancels c
        join executor_runs r on r.id = c.run_id
        where c.event_name in (select name from names) and (c.expires_at is null or c.expires_at > ${iso(now)}::timestamptz)
          and r.status in ('queued', 'running')`,
  );
  if (matched.length === 0) return runIds;
  // The cancelled runs' freed slots wake the runs queued on them after the last cancel: here, or,
  // when the caller collects them (`endingRuns`), when its transaction has done the rest.
  const released = context.released ?? [];
  const cancelContext = { ...context, released };
  for (const [index, { payload }] of events.entries()) {
    for (const row of matched) {
      if (row.event_name !== payload.name) continue;
      if (row.expression && !safeTest(row.expression, { event: row.event, async: payload })) continue;
      if (row.kind === 'wait' && row.step_id !== null) {
        await resumeWait(tx, { runId: row.run_id, stepId: row.step_id, name: row.name }, payload, now);
      } else if (row.kind === 'cancel' && (createdBy.get(row.run_id) ?? -1) < index) {
        await cancelRun(tx, row.run_id, cancelContext);
      }
    }
  }
  if (!context.released) await wakeQueuedOn(tx, released, now);
  return runIds;
}

/** A waiting step gets the event it waited for (once: the wait row is taken) and the run goes on. */
async function resumeWait(
  tx: Queryable,
  wait: { runId: string; stepId: string; name: string | null },
  payload: EventPayload,
  now: number,
): Promise<void> {
  const run = await lockRun(tx, wait.runId);
  if (run?.status !== 'running') return;
  const taken = await selectRows(
    tx,
    sql`delete from executor_waits where run_id = ${wait.runId} and step_id = ${wait.stepId} returning step_id`,
  );
  if (taken.length === 0) return;
  await tx.execute(
    sql`delete from executor_queue where run_id = ${wait.runId} and kind = 'wait-timeout' and step_id = ${wait.stepId}`,
  );
  await recordStep(
    tx,
    wait.runId,
    {
      id: wait.stepId,
      name: wait.name ?? undefined,
      op: 'WaitForEvent',
      status: 'completed',
      data: payload,
      attempts: 1,
      startedAt: undefined,
    },
    now,
  );
  await discoverIfIdle(tx, wait.runId, now);
}

/**
 * Cancels a live run and emits `inngest/function.cancelled`, as Inngest does, so a function can clean
 * up after it (https://www.inngest.com/docs/reference/system-events/inngest-function-cancelled);
 * returns false when the run had already ended.
 */
export async function cancelRun(tx: Queryable, runId: string, context: RunContext): Promise<boolean> {
  const run = await lockRun(tx, runId);
  if (!run || (run.status !== 'queued' && run.status !== 'running')) return false;
  await endRun(tx, runId, 'cancelled', {}, context.now, context.released);
  await context.emit(tx, {
    id: randomUUID(),
    name: FUNCTION_CANCELLED,
    data: {
      function_id: run.functionId,
      run_id: runId,
      error: { name: 'Error', message: 'function cancelled' },
      event: run.event,
    },
    ts: context.now,
  });
  return true;
}

/** A wait or cancel expression that cannot be evaluated does not match (it was checked at sync). */
function safeTest(source: string, scope: Record<string, unknown>): boolean {
  try {
    return compileExpression(source).test(scope);
  } catch {
    return false;
  }
}

/** Queues events for a worker to fan out (the process that received them runs no executor loop). */
export async function enqueueFanOut(tx: Queryable, rowIds: string[], now: number): Promise<void> {
  if (rowIds.length === 0) return;
  await tx.execute(
    queueFanOut(sql`jsonb_array_elements_text(${json(rowIds)}::jsonb) with ordinality as q(id, ord)`, now),
  );
}
