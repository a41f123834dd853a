import type { CompiledFunction } from './function-config';

/** Milliseconds since the epoch; tests hand the engine a clock they move by hand. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** An event as functions receive it. */
export interface EventPayload {
  id: string;
  name: string;
  data: Record<string, unknown>;
  ts: number;
  user?: unknown;
  v?: string;
}

/** The functions this worker knows, by full id (`<app>-<function>`). */
export type Registry = Map<string, CompiledFunction>;

export type RunStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface QueueItem {
  id: number;
  runId: string;
  kind: 'event' | 'start' | 'invoke' | 'sleep' | 'wait-timeout';
  stepId: string;
  attempt: number;
  meta: StepMeta | null;
}

export interface StepMeta {
  name?: string;
  firstAttemptAt?: number;
  lastError?: unknown;
}

/** One op of a 206 answer, as the SDK writes it. */
export interface OutgoingOp {
  id: string;
  op: string;
  name?: string;
  displayName?: string;
  opts?: Record<string, unknown>;
  data?: unknown;
  error?: unknown;
}

/** What one invocation of the serve handler came back with. */
export type InvokeOutcome =
  | { type: 'complete'; output: unknown }
  | { type: 'ops'; ops: OutgoingOp[]; retryAt: number | undefined; noRetry: boolean }
  | { type: 'error'; error: unknown; retriable: boolean; retryAt: number | undefined };
