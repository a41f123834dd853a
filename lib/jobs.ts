import type { Queryable } from './db/client';

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
 * Runs `work` in one database transaction whose `send` stores events together with the rows `work`
 * writes: both commit or neither does (a transactional outbox), and what the events trigger starts
 * once they commit. Only an engine that keeps its events in the platform's database offers it (the
 * embedded executor); with Inngest, events are sent after the write and an outbox covers the gap.
 */
export type TransactionWithEvents = <T>(work: (tx: Queryable, send: SendEvent) => Promise<T>) => Promise<T>;
