import type { SQL } from 'drizzle-orm';
import { AppError, serviceUnavailable } from './errors';

/** An event for the jobs engine, as `inngest.send` takes it. */
export interface JobEvent {
  name: string;
  data: Record<string, unknown>;
  /** Dedupe key: an id the engine has seen in the last 24 h is not stored twice. */
  id?: string;
}

/** Sends events to whichever engine runs the functions; the composition root binds it to `inngest.send`. */
export type SendEvent = (events: JobEvent[]) => Promise<void>;

/**
 * The engine did not take an event: a 503 the client may retry. What the request stored before the
 * send stays, and the retry sends the same event id, so the engine keeps one copy.
 */
export function jobsUnavailable(cause: unknown): AppError {
  if (cause instanceof AppError) return cause;
  return serviceUnavailable('The jobs engine did not take the request; try again shortly', cause);
}

/** `sendEvent` for request handlers: a send that fails answers 503 `service_unavailable`, not 500. */
export function unavailableOnFailure(send: SendEvent): SendEvent {
  return async (events) => {
    try {
      await send(events);
    } catch (error) {
      throw jobsUnavailable(error);
    }
  };
}

/**
 * The caller's rows, written by the statement that stores their events (`StatementWithEvents`).
 * `writes` are common table expressions (`m as (insert ... returning ...), ...`); `gate` selects from
 * them `external_id`, the id of an event to store, and `data`, a jsonb object merged into that event's
 * data (what only the database knows; null for nothing); `select` is the statement's result. Names
 * starting with `event_` are the engine's, in the same statement.
 */
export interface WritesWithEvents {
  writes: SQL;
  gate: SQL;
  select: SQL;
}

/**
 * Writes the caller's rows and the events they let through in one statement: one round trip, and
 * both commit or neither does. An event whose id the gate does not yield is not stored (the rows say
 * it is a redelivery), so every event needs an `id`. What the events trigger starts once they commit.
 * Only the embedded executor offers it; returns the rows of the caller's `select`.
 */
export type StatementWithEvents = <R extends Record<string, unknown>>(
  statement: WritesWithEvents,
  events: JobEvent[],
) => Promise<R[]>;
