import { sql } from 'drizzle-orm';
import { type Queryable, selectRows } from '../db/client';
import { retryAfterTime } from './duration';
import type { EventPayload, InvokeOutcome, OutgoingOp } from './types';

/** Calls the serve handler: the Hono app's `fetch` in-process, exactly what Inngest would POST. */
export type ServeFetch = (request: Request) => Response | Promise<Response>;

export const SERVE_ORIGIN = 'http://embedded.executor';

export interface InvokeInput {
  servePath: string;
  functionId: string;
  /** Hashed id of the step to run, or '' to let the SDK discover what is next. */
  stepId: string;
  runId: string;
  attempt: number;
  maxAttempts: number;
  event: EventPayload;
  /**
   * The queue item id, when the SDK may checkpoint: it then runs consecutive steps in one request and
   * reports each to `/v1/checkpoint/:runId/async` (quoting this id) instead of one request per step.
   */
  checkpointItemId?: number | undefined;
}

interface StepRow {
  step_id: string;
  status: string;
  data: unknown;
  error: unknown;
}

/** The memoized state of a run, in completion order (the SDK's `ctx.stack`). */
export async function loadSteps(db: Queryable, runId: string): Promise<StepRow[]> {
  return selectRows<StepRow & Record<string, unknown>>(
    db,
    sql`select step_id, status, data, error from executor_steps where run_id = ${runId} order by seq`,
  );
}

export function buildRequest(input: InvokeInput, steps: StepRow[]): Request {
  const url = new URL(input.servePath, SERVE_ORIGIN);
  url.searchParams.set('fnId', input.functionId);
  url.searchParams.set('stepId', input.stepId || 'step');
  const memo: Record<string, unknown> = {};
  for (const step of steps) {
    memo[step.step_id] =
      step.status === 'failed'
        ? { type: 'error', error: step.error }
        : { type: 'data', data: step.data ?? null };
  }
  const body = {
    event: input.event,
    events: [input.event],
    steps: memo,
    ctx: {
      run_id: input.runId,
      attempt: input.attempt,
      max_attempts: input.maxAttempts,
      disable_immediate_execution: false,
      use_api: false,
      ...(input.checkpointItemId !== undefined
        ? { fn_id: input.functionId, qi_id: String(input.checkpointItemId) }
        : {}),
      stack: { stack: steps.map((step) => step.step_id), current: steps.length },
    },
    version: 2,
  };
  return new Request(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-inngest-req-version': '2',
      'x-inngest-server-kind': 'dev',
      'x-run-id': input.runId,
    },
    body: JSON.stringify(body),
  });
}

/** Reads the SDK's answer: 200 final result, 206 ops, an error status with its retry headers. */
export async function readOutcome(response: Response, now: number): Promise<InvokeOutcome> {
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text === '' ? null : JSON.parse(text);
  } catch {
    body = { name: 'Error', message: `Unreadable response (${response.status}): ${text.slice(0, 200)}` };
  }
  const noRetry = response.headers.get('x-inngest-no-retry') === 'true';
  const retryAfter = response.headers.get('retry-after');
  const retryAt = retryAfter ? retryAfterTime(retryAfter, now) : undefined;
  if (response.status === 200) return { type: 'complete', output: body };
  if (response.status === 206 && Array.isArray(body)) {
    return { type: 'ops', ops: body as OutgoingOp[], retryAt, noRetry };
  }
  const error =
    body && typeof body === 'object'
      ? body
      : { name: 'Error', message: `HTTP ${response.status}: ${String(body)}` };
  return { type: 'error', error, retriable: !noRetry, retryAt };
}
