import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

/**
 * Tables of the embedded jobs engine (lib/executor). Times the engine schedules with come from its
 * injectable clock, so every such column is written explicitly (no defaultNow) except audit stamps.
 */
const at = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/** Function configs as the SDK's own sync posted them to /fn/register. */
export const executorFunctions = pgTable('executor_functions', {
  id: text('id').primaryKey(),
  appId: text('app_id').notNull(),
  name: text('name').notNull(),
  /** The SDK's function config (triggers, steps, concurrency, throttle, idempotency, cancel...). */
  config: jsonb('config').notNull(),
  /** The serve URL the SDK reported; the executor calls its own app in-process. */
  url: text('url').notNull(),
  syncedAt: at('synced_at').notNull(),
});

/** Cron triggers: `nextAt` is advanced with compare-and-set, so each tick fires once across workers. */
export const executorCrons = pgTable(
  'executor_crons',
  {
    functionId: text('function_id').notNull(),
    cron: text('cron').notNull(),
    nextAt: at('next_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.functionId, t.cron] })],
);

export const executorEvents = pgTable(
  'executor_events',
  {
    id: uuid('id').primaryKey(),
    /** The `id` the sender gave (dedupe key), or the generated id. */
    externalId: text('external_id').notNull(),
    name: text('name').notNull(),
    data: jsonb('data').notNull(),
    /** The whole event as the functions see it. */
    payload: jsonb('payload').notNull(),
    ts: bigint('ts', { mode: 'number' }).notNull(),
    receivedAt: at('received_at').notNull(),
    replayOf: uuid('replay_of'),
  },
  (t) => [
    index('executor_events_received_idx').on(t.receivedAt, t.id),
    index('executor_events_name_idx').on(t.name),
  ],
);

/** Event ids seen in the last 24 h: an insert that neither inserts nor refreshes a stale row is a duplicate. */
export const executorEventIds = pgTable('executor_event_ids', {
  externalId: text('external_id').primaryKey(),
  eventId: uuid('event_id').notNull(),
  seenAt: at('seen_at').notNull(),
});

export const executorRuns = pgTable(
  'executor_runs',
  {
    id: uuid('id').primaryKey(),
    functionId: text('function_id').notNull(),
    eventId: uuid('event_id'),
    event: jsonb('event').notNull(),
    /** queued | running | completed | failed | cancelled */
    status: text('status').notNull(),
    output: jsonb('output'),
    error: jsonb('error'),
    /** [{ key, limit }] evaluated when the run was created. */
    concurrency: jsonb('concurrency').notNull().default(sql`'[]'::jsonb`),
    throttleKey: text('throttle_key'),
    /** Completion order counter for memoized steps (the SDK's ctx.stack). */
    stepSeq: integer('step_seq').notNull().default(0),
    createdAt: at('created_at').notNull(),
    startedAt: at('started_at'),
    endedAt: at('ended_at'),
  },
  (t) => [
    index('executor_runs_list_idx').on(t.createdAt, t.id),
    index('executor_runs_status_idx').on(t.status),
    index('executor_runs_throttle_idx').on(t.throttleKey, t.startedAt),
  ],
);

/** Memoized step results, keyed by the hashed step id the SDK reports. */
export const executorSteps = pgTable(
  'executor_steps',
  {
    runId: uuid('run_id').notNull(),
    stepId: text('step_id').notNull(),
    name: text('name'),
    op: text('op').notNull(),
    /** completed | failed */
    status: text('status').notNull(),
    data: jsonb('data'),
    error: jsonb('error'),
    attempts: integer('attempts').notNull().default(1),
    seq: integer('seq').notNull(),
    startedAt: at('started_at'),
    endedAt: at('ended_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.stepId] })],
);

/** Work items. `kind`: start | invoke | sleep | wait-timeout. Claimed with FOR UPDATE SKIP LOCKED. */
export const executorQueue = pgTable(
  'executor_queue',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    runId: uuid('run_id').notNull(),
    kind: text('kind').notNull(),
    /** Hashed step id: the step to run (invoke), to complete (sleep / wait-timeout); '' = discovery. */
    stepId: text('step_id').notNull().default(''),
    attempt: integer('attempt').notNull().default(0),
    availableAt: at('available_at').notNull(),
    leasedUntil: at('leased_until'),
    leasedBy: text('leased_by'),
    /** Step history details for a pending step (its display name, when it was first tried). */
    meta: jsonb('meta'),
  },
  (t) => [
    index('executor_queue_available_idx').on(t.availableAt),
    uniqueIndex('executor_queue_run_step_idx').on(t.runId, t.kind, t.stepId),
  ],
);

/**
 * The concurrency keys of each `start` item whose run is queued: a run waits for an older one of its
 * keys (first in, first out), and a freed slot wakes the runs queued on it, each by one index range
 * whatever the length of the queue. A row goes with its item (cascade) and when the run starts.
 */
export const executorStartKeys = pgTable(
  'executor_start_keys',
  {
    key: text('key').notNull(),
    itemId: bigint('item_id', { mode: 'number' })
      .notNull()
      .references(() => executorQueue.id, { onDelete: 'cascade' }),
  },
  (t) => [primaryKey({ columns: [t.key, t.itemId] }), index('executor_start_keys_item_idx').on(t.itemId)],
);

/** step.waitForEvent in progress. */
export const executorWaits = pgTable(
  'executor_waits',
  {
    runId: uuid('run_id').notNull(),
    stepId: text('step_id').notNull(),
    name: text('name'),
    eventName: text('event_name').notNull(),
    expression: text('expression'),
    expiresAt: at('expires_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.stepId] }), index('executor_waits_event_idx').on(t.eventName)],
);

/** cancelOn rules of live runs. */
export const executorCancels = pgTable(
  'executor_cancels',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    runId: uuid('run_id').notNull(),
    eventName: text('event_name').notNull(),
    expression: text('expression'),
    expiresAt: at('expires_at'),
  },
  (t) => [index('executor_cancels_event_idx').on(t.eventName), index('executor_cancels_run_idx').on(t.runId)],
);

/** Concurrency slots held by running runs. */
export const executorConcurrency = pgTable(
  'executor_concurrency',
  {
    key: text('key').notNull(),
    runId: uuid('run_id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.key, t.runId] }), index('executor_concurrency_run_idx').on(t.runId)],
);

/** Function-level idempotency keys (24 h). */
export const executorIdempotency = pgTable('executor_idempotency', {
  key: text('key').primaryKey(),
  runId: uuid('run_id').notNull(),
  createdAt: at('created_at').notNull(),
});
