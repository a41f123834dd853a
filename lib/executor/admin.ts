import { sql } from 'drizzle-orm';
import { type Database, type Queryable, selectRows } from '../db/client';
import { AppError } from '../errors';
import { decodeCursor, isUuid, pageOf } from '../pagination';
import { cancelRun, type StoredEvent, storeAndQueueEvents } from './events';
import { endingRuns } from './runs';
import type { EventPayload, RunStatus } from './types';

/** Read side of the engine for the admin API (the Inngest dashboard's job in production). */

export interface RunSummary {
  id: string;
  functionId: string;
  status: RunStatus;
  eventId: string | null;
  eventName: string;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
}

export interface StepHistory {
  stepId: string;
  name: string | null;
  /** completed | failed | running | retrying | sleeping | waiting | scheduled */
  status: string;
  op: string;
  attempts: number;
  output: unknown;
  error: unknown;
  startedAt: string | null;
  endedAt: string | null;
  /** When a pending step next runs (a retry, a sleep's end, a wait's timeout). */
  nextAttemptAt: string | null;
}

export interface RunDetail extends RunSummary {
  event: EventPayload;
  output: unknown;
  error: unknown;
  steps: StepHistory[];
}

export interface EventSummary {
  id: string;
  externalId: string;
  name: string;
  data: unknown;
  ts: number;
  receivedAt: string;
  replayOf: string | null;
}

const isoOf = (value: unknown): string | null => (value ? new Date(value as string).toISOString() : null);

/** Keyset cursors in the same opaque format as every other list of the API (lib/pagination). */
function afterCursor(cursor: string | undefined): { at: string; id: string } | undefined {
  if (!cursor) return undefined;
  const { createdAt, id } = decodeCursor(cursor);
  return { at: createdAt.toISOString(), id };
}

/** A page's last row as a cursor key: the engine's times are written from a millisecond clock. */
const keyOf = (at: unknown, id: string) => ({ createdAt: new Date(at as string), id });

interface RunRow extends Record<string, unknown> {
  id: string;
  function_id: string;
  status: RunStatus;
  event_id: string | null;
  event: EventPayload;
  created_at: unknown;
  started_at: unknown;
  ended_at: unknown;
  output: unknown;
  error: unknown;
}

function summary(row: RunRow): RunSummary {
  return {
    id: row.id,
    functionId: row.function_id,
    status: row.status,
    eventId: row.event_id,
    eventName: row.event.name,
    createdAt: isoOf(row.created_at) as string,
    startedAt: isoOf(row.started_at),
    endedAt: isoOf(row.ended_at),
  };
}

export async function listRuns(
  db: Queryable,
  filter: {
    status?: RunStatus | undefined;
    functionId?: string | undefined;
    eventId?: string | undefined;
    limit: number;
    cursor?: string | undefined;
  },
): Promise<{ runs: RunSummary[]; nextCursor: string | null }> {
  const after = afterCursor(filter.cursor);
  const rows = await selectRows<RunRow>(
    db,
    sql`select id, function_id, status, event_id, event, created_at, started_at, ended_at, output, error
        from executor_runs
        where true
          ${filter.status ? sql`and status = ${filter.status}` : sql``}
          ${filter.functionId ? sql`and function_id = ${filter.functionId}` : sql``}
          ${filter.eventId ? sql`and event_id = ${filter.eventId}` : sql``}
          ${after ? sql`and (created_at, id) < (${after.at}::timestamptz, ${after.id}::uuid)` : sql``}
        order by created_at desc, id desc
        limit ${filter.limit + 1}`,
  );
  const page = pageOf(rows, filter.limit, summary, (row) => keyOf(row.created_at, row.id));
  return { runs: page.items, nextCursor: page.nextCursor };
}

export async function getRun(db: Queryable, runId: string): Promise<RunDetail | undefined> {
  if (!isUuid(runId)) return undefined;
  const [row] = await selectRows<RunRow>(
    db,
    sql`select id, function_id, status, event_id, event, created_at, started_at, ended_at, output, error
        from executor_runs where id = ${runId}`,
  );
  if (!row) return undefined;
  const done = await selectRows<Record<string, unknown>>(
    db,
    sql`select step_id, name, op, status, data, error, attempts, started_at, ended_at from executor_steps
        where run_id = ${runId} order by seq`,
  );
  const pending = await selectRows<Record<string, unknown>>(
    db,
    sql`select q.kind, q.step_id, q.attempt, q.available_at, q.leased_by, q.meta from executor_queue q
        where q.run_id = ${runId} and q.step_id <> '' order by q.id`,
  );
  const steps: StepHistory[] = done.map((step) => ({
    stepId: String(step.step_id),
    name: (step.name as string | null) ?? null,
    status: String(step.status),
    op: String(step.op),
    attempts: Number(step.attempts),
    output: step.status === 'completed' ? (step.data ?? null) : null,
    error: step.error ?? null,
    startedAt: isoOf(step.started_at),
    endedAt: isoOf(step.ended_at),
    nextAttemptAt: null,
  }));
  for (const item of pending) {
    const meta = (item.meta ?? {}) as { name?: string; firstAttemptAt?: number; lastError?: unknown };
    const kind = String(item.kind);
    const attempt = Number(item.attempt);
    steps.push({
      stepId: String(item.step_id),
      name: meta.name ?? null,
      status:
        kind === 'sleep'
          ? 'sleeping'
          : kind === 'wait-timeout'
            ? 'waiting'
            : item.leased_by
              ? 'running'
              : attempt > 0
                ? 'retrying'
                : 'scheduled',
      op: kind === 'sleep' ? 'Sleep' : kind === 'wait-timeout' ? 'WaitForEvent' : 'StepRun',
      attempts: attempt,
      output: null,
      error: meta.lastError ?? null,
      startedAt: meta.firstAttemptAt ? new Date(meta.firstAttemptAt).toISOString() : null,
      endedAt: null,
      nextAttemptAt: isoOf(item.available_at),
    });
  }
  return { ...summary(row), event: row.event, output: row.output ?? null, error: row.error ?? null, steps };
}

interface EventRow extends Record<string, unknown> {
  id: string;
  external_id: string;
  name: string;
  data: unknown;
  ts: number | string;
  received_at: unknown;
  replay_of: string | null;
}

function eventSummary(row: EventRow): EventSummary {
  return {
    id: row.id,
    externalId: row.external_id,
    name: row.name,
    data: row.data,
    ts: Number(row.ts),
    receivedAt: isoOf(row.received_at) as string,
    replayOf: row.replay_of,
  };
}

export async function listEvents(
  db: Queryable,
  filter: { name?: string | undefined; limit: number; cursor?: string | undefined },
): Promise<{ events: EventSummary[]; nextCursor: string | null }> {
  const after = afterCursor(filter.cursor);
  const rows = await selectRows<EventRow>(
    db,
    sql`select id, external_id, name, data, ts, received_at, replay_of from executor_events
        where true
          ${filter.name ? sql`and name = ${filter.name}` : sql``}
          ${after ? sql`and (received_at, id) < (${after.at}::timestamptz, ${after.id}::uuid)` : sql``}
        order by received_at desc, id desc
        limit ${filter.limit + 1}`,
  );
  const page = pageOf(rows, filter.limit, eventSummary, (row) => keyOf(row.received_at, row.id));
  return { events: page.items, nextCursor: page.nextCursor };
}

export async function getEvent(
  db: Queryable,
  eventId: string,
): Promise<(EventSummary & { runs: RunSummary[] }) | undefined> {
  if (!isUuid(eventId)) return undefined;
  const [row] = await selectRows<EventRow>(
    db,
    sql`select id, external_id, name, data, ts, received_at, replay_of from executor_events where id = ${eventId}`,
  );
  if (!row) return undefined;
  const runs = await listRuns(db, { eventId, limit: 100 });
  return { ...eventSummary(row), runs: runs.runs };
}

/**
 * Replays a stored event: a copy with a fresh id (linked by `replayOf`) that a worker fans out, so
 * it runs again. Works from any process (the API need not run the executor loop).
 */
export async function replayEvent(db: Database, eventId: string, now: number): Promise<EventSummary> {
  const original = await getEvent(db, eventId);
  if (!original) throw new AppError('event_not_found', `No event with id ${eventId}`);
  const rowId = await db.transaction(async (tx) => {
    const [row] = await selectRows<{ payload: EventPayload }>(
      tx,
      sql`select payload from executor_events where id = ${eventId}`,
    );
    const { id: _id, ts: _ts, ...rest } = (row as { payload: EventPayload }).payload;
    const [stored] = await storeAndQueueEvents(tx, [rest], now, { replayOf: eventId });
    return (stored as StoredEvent).rowId;
  });
  const replayed = await getEvent(db, rowId);
  if (!replayed) throw new AppError('internal_error', 'The replayed event was not stored');
  const { runs: _runs, ...event } = replayed;
  return event;
}

/**
 * Cancels a run (404 when unknown); a run that already ended is answered as it is. Its
 * `inngest/function.cancelled` event is queued for a worker to fan out, as a replay is.
 */
export async function cancelRunById(db: Database, runId: string, now: number): Promise<RunDetail> {
  const existing = await getRun(db, runId);
  if (!existing) throw new AppError('run_not_found', `No run with id ${runId}`);
  await db.transaction((tx) =>
    endingRuns(tx, now, (released) =>
      cancelRun(tx, runId, {
        now,
        released,
        emit: async (inTx, event) => {
          await storeAndQueueEvents(inTx, [event], now);
        },
      }),
    ),
  );
  return (await getRun(db, runId)) as RunDetail;
}
