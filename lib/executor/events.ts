import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { type Queryable, selectRows } from '../db/client';
import { compileExpression } from './expression';
import type { CompiledFunction } from './function-config';
import { createRun, discoverIfIdle, endRun, lockRun, type RunContext, recordStep } from './runs';
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
  if (typeof incoming.name !== 'string' || incoming.name === '') throw new Error('event "name" is required');
  const rowId = randomUUID();
  const externalId = incoming.id ? String(incoming.id) : rowId;
  if (incoming.id) {
    const fresh = await selectRows(
      tx,
      sql`insert into executor_event_ids (external_id, event_id, seen_at) values (${externalId}, ${rowId}, ${iso(now)}::timestamptz)
          on conflict (external_id) do update set event_id = excluded.event_id, seen_at = excluded.seen_at
          where executor_event_ids.seen_at < ${iso(now - EVENT_DEDUPE_WINDOW_MS)}::timestamptz
          returning event_id`,
    );
    if (fresh.length === 0) {
      const [existing] = await selectRows<{ event_id: string }>(
        tx,
        sql`select event_id from executor_event_ids where external_id = ${externalId}`,
      );
      return {
        rowId: existing?.event_id ?? rowId,
        payload: { id: externalId, name: incoming.name, data: incoming.data ?? {}, ts: incoming.ts ?? now },
        duplicate: true,
      };
    }
  }
  const payload: EventPayload = {
    id: externalId,
    name: incoming.name,
    data: incoming.data ?? {},
    ts: typeof incoming.ts === 'number' ? incoming.ts : now,
    ...(incoming.user !== undefined ? { user: incoming.user } : {}),
    ...(incoming.v !== undefined ? { v: incoming.v } : {}),
  };
  await tx.execute(
    sql`insert into executor_events (id, external_id, name, data, payload, ts, received_at, replay_of)
        values (${rowId}, ${externalId}, ${payload.name}, ${json(payload.data)}::jsonb, ${json(payload)}::jsonb,
                ${payload.ts}, ${iso(now)}::timestamptz, ${replayOf})`,
  );
  return { rowId, payload, duplicate: false };
}

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
 * What an event sets off: a run per matching function, the waits it satisfies (step.waitForEvent)
 * and the runs it cancels (cancelOn). Runs in the caller's transaction.
 */
export async function fanOut(
  tx: Queryable,
  registry: Registry,
  stored: StoredEvent,
  context: RunContext,
): Promise<string[]> {
  const { payload, rowId } = stored;
  const now = context.now;
  const runIds: string[] = [];
  for (const fn of matchingFunctions(registry, payload)) {
    const runId = await createRun(tx, fn, payload, rowId, now);
    if (runId) runIds.push(runId);
  }

  // The waits this event satisfies and the runs it cancels, in one round trip.
  const matched = await selectRows<{
    kind: 'wait' | 'cancel';
    run_id: string;
    step_id: string | null;
    name: string | null;
    expression: string | null;
    event: EventPayload;
  }>(
    tx,
    sql`select 'wait' as kind, w.run_id, w.step_id, w.name, w.expression, r.event from executor_waits w
        join executor_runs r on r.id = w.run_id
        where w.event_name = ${payload.name} and w.expires_at > ${iso(now)}::timestamptz and r.status = 'running'
        union all
        select 'cancel' as kind, c.run_id, null, null, c.expression, r.event from executor_cancels c
        join executor_runs r on r.id = c.run_id
        where c.event_name = ${payload.name} and (c.expires_at is null or c.expires_at > ${iso(now)}::timestamptz)
          and r.status in ('queued', 'running')`,
  );
  const waits = matched.flatMap((row) =>
    row.kind === 'wait' && row.step_id !== null ? [{ ...row, step_id: row.step_id }] : [],
  );
  const cancels = matched.filter((row) => row.kind === 'cancel');
  for (const wait of waits) {
    if (wait.expression && !safeTest(wait.expression, { event: wait.event, async: payload })) continue;
    const run = await lockRun(tx, wait.run_id);
    if (run?.status !== 'running') continue;
    const taken = await selectRows(
      tx,
      sql`delete from executor_waits where run_id = ${wait.run_id} and step_id = ${wait.step_id} returning step_id`,
    );
    if (taken.length === 0) continue;
    await tx.execute(
      sql`delete from executor_queue where run_id = ${wait.run_id} and kind = 'wait-timeout' and step_id = ${wait.step_id}`,
    );
    await recordStep(
      tx,
      wait.run_id,
      {
        id: wait.step_id,
        name: wait.name ?? undefined,
        op: 'WaitForEvent',
        status: 'completed',
        data: payload,
        attempts: 1,
        startedAt: undefined,
      },
      now,
    );
    await discoverIfIdle(tx, wait.run_id, now);
  }

  for (const cancel of cancels) {
    if (cancel.expression && !safeTest(cancel.expression, { event: cancel.event, async: payload })) continue;
    await cancelRun(tx, cancel.run_id, now);
  }
  return runIds;
}

/** Cancels a live run; returns false when it had already ended. */
export async function cancelRun(tx: Queryable, runId: string, now: number): Promise<boolean> {
  const run = await lockRun(tx, runId);
  if (!run || (run.status !== 'queued' && run.status !== 'running')) return false;
  await endRun(tx, runId, 'cancelled', {}, now);
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

/** Queues an event for a worker to fan out (the process that received it runs no executor loop). */
export async function enqueueFanOut(tx: Queryable, rowId: string, now: number): Promise<void> {
  await tx.execute(
    sql`insert into executor_queue (run_id, kind, step_id, available_at) values (${rowId}, 'event', '', ${iso(now)}::timestamptz)`,
  );
}
