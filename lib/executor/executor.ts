import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { sql } from 'drizzle-orm';
import type { Database, Queryable } from '../db/client';
import { selectRows } from '../db/client';
import { GroupCommit } from '../group-commit';
import type { PartHealth } from '../health';
import type { JobEvent, StatementWithEvents, WritesWithEvents } from '../jobs';
import type { Logger } from '../logger';
import { applyOutcome, completeTimer, tryStart } from './apply';
import { type ClaimedItem, claimItems } from './claim';
import {
  cancelRun,
  enqueueFanOut,
  fanOutAll,
  type IncomingEvent,
  type StoredEvent,
  storeAndQueueEvents,
  storeAndQueueEventsWith,
  storeEvent,
  storeEvents,
} from './events';
import { FunctionConfigError, nextCronTick } from './function-config';
import { buildRequest, loadSteps, readOutcome, SERVE_ORIGIN, type ServeFetch } from './invoke';
import { type Checkpoint, type CompletedRun, completeRuns, storeCheckpoints } from './leased-writes';
import { type PruneResult, pruneHistory } from './prune';
import { loadRegistry, registerFunctions } from './registry';
import { createRun, endingRuns, failRun, type RunContext } from './runs';
import { iso, json } from './sql-values';
import {
  type Clock,
  type EventPayload,
  type InvokeOutcome,
  type OutgoingOp,
  type QueueItem,
  type Registry,
  systemClock,
} from './types';

export interface ExecutorOptions {
  db: Database;
  logger: Logger;
  /** Where the serve handler is mounted on the app handed to `attach`. */
  servePath: string;
  clock?: Clock;
  workerId?: string;
  /** Work items one worker runs at once. */
  concurrency?: number;
  /** How often the database is polled for work from other processes and due timers. */
  pollIntervalMs?: number;
  /** How long a claimed item stays ours without a heartbeat; a killed worker's items return after it. */
  leaseMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** SIGTERM: in-flight work gets this long to finish before its leases are released. */
  shutdownTimeoutMs?: number;
  /** Jitter source for backoff (tests make it deterministic). */
  random?: () => number;
  /**
   * Let the SDK checkpoint (inngest v4 async checkpointing): consecutive steps run in one invocation
   * and are stored as each finishes, through `/v1/checkpoint/:runId/async`. Default true.
   */
  checkpointing?: boolean;
  /**
   * Cross-process wake-ups (PostgreSQL LISTEN/NOTIFY): with `notify`, every stored event, replay and
   * cancel also sends NOTIFY on commit; with `listen`, the running loop wakes on it instead of waiting
   * for its next poll. Without them, other processes' work is found by polling.
   */
  notify?: boolean;
  listen?: ((channel: string, onNotify: () => void) => Promise<() => Promise<void>>) | undefined;
  /** Ended runs (with their steps) and unneeded events older than this are deleted. Default 7 days. */
  historyMs?: number;
  /** How often the loop prunes history (first one interval after start). Default 1 hour. */
  pruneIntervalMs?: number;
}

/** The NOTIFY channel the executors of one database wake each other on. */
export const WAKE_CHANNEL = 'openclaw_executor_wake';

/**
 * The embedded jobs engine: the server side of the Inngest SDK protocol on Postgres. The Inngest
 * client gets `executor.fetch` (events and sync reach it in-process); the executor calls the
 * app's serve handler through `attach(app.fetch)`, as Inngest Cloud would over HTTP.
 */
export class EmbeddedExecutor {
  readonly workerId: string;
  /** Counters for benchmarks and logs: serve-handler invocations and step checkpoints received. */
  readonly stats = { invocations: 0, checkpoints: 0 };
  private readonly db: Database;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly servePath: string;
  private readonly maxInFlight: number;
  private readonly pollIntervalMs: number;
  private readonly leaseMs: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly shutdownTimeoutMs: number;
  private readonly random: () => number;
  private readonly checkpointing: boolean;
  private serveFetch: ServeFetch | undefined;
  /** Set once this process synced or loaded the functions: it fans events out itself. */
  private registry: Registry | undefined;
  private readonly inFlight = new Map<number, Promise<void>>();
  private running = false;
  private stopping = false;
  private loopDone: Promise<void> | undefined;
  private loopError: Error | undefined;
  private wakeUp: (() => void) | undefined;
  private wakePending = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly notify: boolean;
  private readonly listen: ExecutorOptions['listen'];
  private unlisten: (() => Promise<void>) | undefined;
  private lastCronCheck = 0;
  private readonly historyMs: number;
  private readonly pruneIntervalMs: number;
  /** When the loop last pruned (set at start, so the first prune comes one interval later). */
  private lastPrune = 0;
  /** The loop's prune in progress: one at a time, and `stop()` lets it finish. */
  private pruning: Promise<void> | undefined;
  /** Concurrent runs' step checkpoints and completions share statements (group commit). */
  private readonly checkpoints: GroupCommit<Checkpoint, boolean>;
  private readonly completions: GroupCommit<CompletedRun, boolean>;
  /** Concurrent `send` calls (one per Telegram update, say) share one transaction. */
  private readonly sends: GroupCommit<IncomingEvent[], string[]>;
  private readonly fanOuts: GroupCommit<QueueItem, undefined>;

  constructor(options: ExecutorOptions) {
    this.db = options.db;
    this.logger = options.logger.child({ component: 'executor' });
    this.clock = options.clock ?? systemClock;
    this.servePath = options.servePath;
    this.workerId = options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.maxInFlight = options.concurrency ?? 128;
    this.pollIntervalMs = options.pollIntervalMs ?? 250;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.backoffBaseMs = options.backoffBaseMs ?? 2_000;
    this.backoffMaxMs = options.backoffMaxMs ?? 10 * 60_000;
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? 10_000;
    this.random = options.random ?? Math.random;
    this.checkpointing = options.checkpointing ?? true;
    this.notify = options.notify ?? false;
    this.listen = options.listen;
    this.historyMs = options.historyMs ?? 7 * 24 * 60 * 60 * 1000;
    this.pruneIntervalMs = options.pruneIntervalMs ?? 60 * 60 * 1000;
    this.checkpoints = new GroupCommit((batch) =>
      storeCheckpoints(this.db, batch, this.workerId, this.clock.now()),
    );
    this.completions = new GroupCommit((batch) =>
      completeRuns(this.db, batch, this.workerId, this.clock.now()),
    );
    this.sends = new GroupCommit((batch) => this.storeAndFanOut(batch), { maxParallel: 4 });
    // One batch at a time: the claim hands items over in queue order, so runs are created in it.
    this.fanOuts = new GroupCommit(
      async (items) => {
        await this.fanOutQueued(items);
        return items.map(() => undefined);
      },
      { maxParallel: 1 },
    );
  }

  /** Tells the other processes' loops (LISTEN) that there is new work; sent when `tx` commits. */
  private async notifyOthers(tx: Queryable): Promise<void> {
    if (this.notify) await tx.execute(sql`select pg_notify(${WAKE_CHANNEL}, '')`);
  }

  /** The Inngest client's `fetch`: `/e/:key` stores events, `/fn/register` takes the SDK's sync. */
  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    // The SDK calls fetch(url, init) with a string body: read it as it is rather than through a
    // Request (each one costs an AbortSignal, and the SDK checkpoints every step through here).
    const method = (input instanceof Request ? input.method : (init?.method ?? 'GET')).toUpperCase();
    const { pathname } = new URL(input instanceof Request ? input.url : input);
    const body = async (): Promise<unknown> => {
      if (input instanceof Request) return input.json();
      const raw = init?.body;
      return JSON.parse(typeof raw === 'string' ? raw : await new Response(raw).text());
    };
    try {
      if (method === 'POST' && pathname.endsWith('/fn/register')) {
        const compiled = await registerFunctions(this.db, await body(), this.clock.now());
        this.registry = new Map(compiled.map((fn) => [fn.id, fn]));
        return Response.json({ status: 200, modified: true });
      }
      const checkpoint = /\/v1\/checkpoint\/([^/]+)\/async$/.exec(pathname);
      if (method === 'POST' && checkpoint) {
        const stored = await this.checkpoint(decodeURIComponent(checkpoint[1] as string), await body());
        return stored
          ? Response.json({ ok: true })
          : Response.json({ error: 'stale dispatch' }, { status: 409 });
      }
      const event = /\/e\/[^/]+$/.exec(pathname);
      if (method === 'POST' && event) {
        const events = (await body()) as IncomingEvent | IncomingEvent[];
        const ids = await this.send(Array.isArray(events) ? events : [events]);
        return Response.json({ ids, status: 200 });
      }
      return Response.json(
        { status: 404, error: `No executor route for ${method} ${pathname}` },
        { status: 404 },
      );
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const status = error instanceof FunctionConfigError || error instanceof SyntaxError ? 400 : 500;
      if (status === 500) this.logger.error({ err: error }, 'executor request failed');
      return Response.json({ status, error: message }, { status });
    }
  };

  /** The app whose serve handler runs the functions (in-process `app.fetch`). */
  attach(serveFetch: ServeFetch): this {
    this.serveFetch = serveFetch;
    return this;
  }

  /** Syncs through the SDK itself: a PUT to the serve handler, which POSTs its configs to /fn/register. */
  async sync(): Promise<void> {
    const response = await this.requireServe()(
      new Request(new URL(this.servePath, SERVE_ORIGIN), { method: 'PUT' }),
    );
    const body = (await response.json().catch(() => ({}))) as { message?: string };
    if (!response.ok) throw new Error(`Function sync failed: ${body.message ?? response.status}`);
  }

  /**
   * Stores events durably and sets off what they trigger; resolves once they are committed. Returns
   * the stored events' ids.
   */
  async send(events: IncomingEvent[]): Promise<string[]> {
    if (events.length === 0) return [];
    return this.sends.submit(events);
  }

  /** Several `send` calls' events in one transaction, in order: each call gets its events' ids. */
  private async storeAndFanOut(calls: IncomingEvent[][]): Promise<string[][]> {
    const now = this.clock.now();
    const events = calls.flat();
    // Without the functions (a web process), storing is one statement: no transaction around it.
    const stored = this.registry
      ? await this.db.transaction((tx) => this.storeIn(tx, events, now))
      : await this.storeIn(this.db, events, now);
    this.wake();
    const ids: string[][] = [];
    let next = 0;
    for (const call of calls) {
      ids.push(stored.slice(next, next + call.length).map((event) => event.payload.id));
      next += call.length;
    }
    return ids;
  }

  /**
   * Stores events and sets off what they trigger, or queues that for a worker in a process without
   * the functions; the statement storing them also wakes the other processes' loops (on commit).
   */
  private async storeIn(tx: Queryable, events: IncomingEvent[], now: number): Promise<StoredEvent[]> {
    const options = { notifyChannel: this.notify ? WAKE_CHANNEL : undefined };
    if (!this.registry) return storeAndQueueEvents(tx, events, now, options);
    const stored = await storeEvents(tx, events, now, options);
    const fresh = stored.filter((event) => !event.duplicate);
    await endingRuns(tx, now, (released) => this.setOff(tx, fresh, now, released));
    return stored;
  }

  /**
   * `StatementWithEvents`: the caller's rows, the events they let through and their fan-out queue
   * items in one statement. This process's loop (or a worker's, woken by NOTIFY) sets them off, as it
   * does for the events of a process without the functions.
   */
  readonly statement: StatementWithEvents = async <R extends Record<string, unknown>>(
    statement: WritesWithEvents,
    events: JobEvent[],
  ) => {
    const options = { notifyChannel: this.notify ? WAKE_CHANNEL : undefined };
    const rows = await storeAndQueueEventsWith<R>(this.db, statement, events, this.clock.now(), options);
    this.wake();
    return rows;
  };

  /** Cancels a live run; false when it had already ended. */
  async cancel(runId: string): Promise<boolean> {
    const now = this.clock.now();
    const cancelled = await this.db.transaction((tx) =>
      endingRuns(tx, now, async (released) => {
        const ended = await cancelRun(tx, runId, this.context(now, released));
        // A cancel frees concurrency slots that runs queued in other processes wait for.
        if (ended) await this.notifyOthers(tx);
        return ended;
      }),
    );
    this.wake();
    return cancelled;
  }

  /** Syncs, then runs the loop until `stop()`. */
  async start(): Promise<void> {
    if (this.running) return;
    await this.sync();
    this.running = true;
    this.stopping = false;
    this.loopError = undefined;
    this.lastPrune = this.clock.now();
    this.heartbeat = setInterval(() => void this.extendLeases(), Math.max(100, Math.floor(this.leaseMs / 3)));
    this.heartbeat.unref();
    if (this.listen) {
      this.unlisten = await this.listen(WAKE_CHANNEL, () => this.wake()).catch((error: unknown) => {
        this.logger.warn({ err: error }, 'LISTEN failed; polling only');
        return undefined;
      });
    }
    this.loopDone = this.loop().catch((error: unknown) => {
      this.loopError = error instanceof Error ? error : new Error(String(error));
      this.logger.error({ err: error }, 'executor loop died');
    });
    this.logger.info({ workerId: this.workerId, functions: this.registry?.size ?? 0 }, 'executor started');
  }

  /** Stops claiming; in-flight work finishes within the shutdown window or its leases are released. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.stopping = true;
    this.wake();
    await this.loopDone;
    await this.pruning;
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      Promise.allSettled([...this.inFlight.values()]).then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), this.shutdownTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    clearInterval(this.heartbeat);
    await this.unlisten?.();
    this.unlisten = undefined;
    if (!finished) {
      await this.db.execute(
        sql`update executor_queue set leased_until = null, leased_by = null where leased_by = ${this.workerId}`,
      );
      this.logger.warn(
        { released: this.inFlight.size },
        'executor stopped with work in flight; leases released',
      );
    }
    this.running = false;
    this.logger.info('executor stopped');
  }

  health(): PartHealth {
    if (this.loopError) return { ok: false, error: `executor loop died: ${this.loopError.message}` };
    if (this.running && this.stopping) return { ok: false, error: 'executor is stopping' };
    return { ok: true };
  }

  /**
   * Whether some worker is running this database's jobs, for a process that runs none itself (the
   * web process): every worker fires the due crons first thing on each pass, so a tick overdue by
   * more than `maxLagMs` (minutes, for crons due every minute) means none is. Before any worker has
   * registered the functions there are no ticks, and nothing to say.
   */
  async workersHealth(maxLagMs: number): Promise<PartHealth> {
    const [row] = await selectRows<{ at: string | Date | null }>(
      this.db,
      sql`select min(next_at) as at from executor_crons`,
    );
    if (!row?.at) return { ok: true };
    const lagMs = this.clock.now() - new Date(row.at).getTime();
    if (lagMs <= maxLagMs) return { ok: true };
    return {
      ok: false,
      error: `no worker has run the jobs for ${Math.round(lagMs / 1000)} s (a cron tick is overdue): is the worker process running?`,
    };
  }

  /**
   * Claims and runs every item available now, once (the loop's unit of work; tests call it through
   * the harness's `drain`). Returns how many items ran.
   */
  async processAvailable(limit = 100): Promise<number> {
    await this.fireDueCrons();
    const items = await this.claim(limit);
    await Promise.all(items.map((item) => this.dispatch(item)));
    return items.length;
  }

  /** The earliest time queued work comes due (timers, retries; not crons), for tests that move the clock. */
  async nextDueAt(): Promise<number | undefined> {
    const [row] = await selectRows<{ at: string | Date | null }>(
      this.db,
      sql`select min(available_at) as at from executor_queue`,
    );
    return row?.at ? new Date(row.at).getTime() : undefined;
  }

  /** Fires each due cron tick once across all workers (compare-and-set on next_at). */
  async fireDueCrons(): Promise<number> {
    const now = this.clock.now();
    const registry = this.registry;
    if (!registry) return 0;
    const due = await selectRows<{ function_id: string; cron: string; next_at: string | Date }>(
      this.db,
      sql`select function_id, cron, next_at from executor_crons where next_at <= ${iso(now)}::timestamptz`,
    );
    let fired = 0;
    for (const tick of due) {
      const fn = registry.get(tick.function_id);
      if (!fn) continue;
      const started = await this.db.transaction(async (tx) => {
        const claimed = await selectRows(
          tx,
          sql`update executor_crons set next_at = ${iso(nextCronTick(tick.cron, now))}::timestamptz
              where function_id = ${tick.function_id} and cron = ${tick.cron} and next_at = ${new Date(tick.next_at).toISOString()}::timestamptz
              returning function_id`,
        );
        if (claimed.length === 0) return false;
        const event = await storeEvent(
          tx,
          { name: 'inngest/scheduled.timer', data: { cron: tick.cron } },
          now,
        );
        await createRun(tx, fn, event.payload, event.rowId, now);
        return true;
      });
      if (started) fired += 1;
    }
    if (fired > 0) this.wake();
    return fired;
  }

  /** Deletes history older than `historyMs` (bounded batches; see pruneHistory). */
  async prune(): Promise<PruneResult> {
    return pruneHistory(this.db, { now: this.clock.now(), historyMs: this.historyMs });
  }

  /** The loop's prune: one at a time, off the loop's path, never throwing. */
  private async pruneInBackground(): Promise<void> {
    try {
      const pruned = await this.prune();
      if (Object.values(pruned).some((count) => count > 0)) {
        this.logger.info({ ...pruned }, 'pruned executor history');
      }
    } catch (error) {
      this.logger.warn({ err: error }, 'pruning executor history failed');
    } finally {
      this.pruning = undefined;
    }
  }

  private requireServe(): ServeFetch {
    if (!this.serveFetch) throw new Error('executor has no serve handler attached (call attach(app.fetch))');
    return this.serveFetch;
  }

  /** `released`: the transaction's collector of freed keys (`endingRuns`), which emitted events' cancels share. */
  private context(now: number, released?: string[]): RunContext {
    return {
      now,
      released,
      emit: async (tx: Queryable, event: EventPayload) => {
        await this.setOff(tx, [await storeEvent(tx, event, now)], now, released);
      },
    };
  }

  /**
   * What stored events set off: fanned out here when this process knows the functions, else queued
   * for a worker that does (a process that runs no executor loop).
   */
  private async setOff(
    tx: Queryable,
    events: StoredEvent[],
    now: number,
    released?: string[],
  ): Promise<void> {
    if (this.registry) await fanOutAll(tx, this.registry, events, this.context(now, released));
    else
      await enqueueFanOut(
        tx,
        events.map((event) => event.rowId),
        now,
      );
  }

  private wake(): void {
    this.wakePending = true;
    this.wakeUp?.();
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      this.wakePending = false;
      let claimedAll = false;
      try {
        if (this.clock.now() - this.lastCronCheck >= this.pollIntervalMs) {
          this.lastCronCheck = this.clock.now();
          await this.fireDueCrons();
        }
        if (!this.pruning && this.clock.now() - this.lastPrune >= this.pruneIntervalMs) {
          this.lastPrune = this.clock.now();
          this.pruning = this.pruneInBackground();
        }
        const free = this.maxInFlight - this.inFlight.size;
        if (free > 0) {
          const items = await this.claim(free);
          for (const item of items) void this.dispatch(item);
          claimedAll = items.length === free;
        }
      } catch (error) {
        this.logger.error({ err: error }, 'executor poll failed');
      }
      if (this.stopping) break;
      if (claimedAll && this.inFlight.size < this.maxInFlight) continue;
      if (this.wakePending) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.pollIntervalMs);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = undefined;
    }
  }

  private claim(limit: number): Promise<ClaimedItem[]> {
    return claimItems(this.db, {
      limit,
      now: this.clock.now(),
      leaseMs: this.leaseMs,
      workerId: this.workerId,
    });
  }

  private dispatch(item: ClaimedItem): Promise<void> {
    const work = this.process(item)
      .catch(async (error: unknown) => {
        this.logger.error(
          { err: error, runId: item.runId, kind: item.kind },
          'work item failed; released for retry',
        );
        await this.db
          .execute(
            sql`update executor_queue set leased_until = null, leased_by = null,
                available_at = ${iso(this.clock.now() + 1_000)}::timestamptz
                where id = ${item.id} and leased_by = ${this.workerId}`,
          )
          .catch(() => {});
      })
      .finally(() => {
        this.inFlight.delete(item.id);
        this.wake();
      });
    this.inFlight.set(item.id, work);
    return work;
  }

  private async process(item: ClaimedItem): Promise<void> {
    switch (item.kind) {
      case 'event':
        return this.fanOuts.submit(item);
      case 'start': {
        const registry = await this.functions();
        const started = await this.db.transaction((tx) =>
          tryStart(tx, item, { workerId: this.workerId, now: this.clock.now(), registry }),
        );
        if (started) {
          const run = { ...started, status: 'running', fresh: true };
          return this.invoke({ ...item, kind: 'invoke', run });
        }
        return;
      }
      case 'invoke':
        return this.invoke(item);
      case 'sleep':
      case 'wait-timeout':
        await this.db.transaction((tx) => completeTimer(tx, item, this.workerId, this.clock.now()));
        return;
    }
  }

  /**
   * Fans out events another process queued (a web process runs no executor loop), many per
   * transaction when they come together: the events are read and their queue items taken in one
   * statement each, then set off in queue order as `fanOutAll` does. An item no longer leased to
   * this worker is left alone.
   */
  private async fanOutQueued(items: QueueItem[]): Promise<void> {
    const registry = await this.functions();
    const now = this.clock.now();
    const ordered = [...items].sort((a, b) => a.id - b.id);
    await this.db.transaction(async (tx) => {
      const taken = await selectRows<{ id: string | number; payload: EventPayload }>(
        tx,
        sql`with taken as (
              delete from executor_queue
              where id in (select jsonb_array_elements_text(${json(ordered.map((item) => item.id))}::jsonb)::bigint)
                and leased_by = ${this.workerId}
              returning id, run_id)
            select t.id, e.payload from taken t join executor_events e on e.id = t.run_id::uuid`,
      );
      const payloads = new Map(taken.map((row) => [Number(row.id), row.payload]));
      const events = ordered.flatMap((item) => {
        const payload = payloads.get(item.id);
        return payload ? [{ rowId: item.runId, payload, duplicate: false }] : [];
      });
      if (events.length > 0) {
        await endingRuns(tx, now, (released) => fanOutAll(tx, registry, events, this.context(now, released)));
      }
    });
  }

  private async functions(): Promise<Registry> {
    if (!this.registry) this.registry = await loadRegistry(this.db);
    return this.registry;
  }

  /** Calls the serve handler for one queue item, with the run its claim (or its start) read. */
  private async invoke(item: ClaimedItem): Promise<void> {
    const run = item.run;
    if (run?.status !== 'running') {
      await this.db.execute(
        sql`delete from executor_queue where id = ${item.id} and leased_by = ${this.workerId}`,
      );
      return;
    }
    let fn = (await this.functions()).get(run.functionId);
    if (!fn) {
      this.registry = await loadRegistry(this.db);
      fn = this.registry.get(run.functionId);
    }
    const found = fn;
    if (!found) {
      const now = this.clock.now();
      await this.db.transaction((tx) =>
        endingRuns(tx, now, (released) =>
          failRun(
            tx,
            item.runId,
            { functionId: run.functionId, event: run.event },
            { name: 'FunctionNotFound', message: `Function "${run.functionId}" is not synced` },
            this.context(now, released),
          ),
        ),
      );
      return;
    }
    const steps = run.fresh ? [] : await loadSteps(this.db, item.runId);
    const request = buildRequest(
      {
        servePath: this.servePath,
        functionId: run.functionId,
        stepId: item.stepId,
        runId: item.runId,
        attempt: item.attempt,
        maxAttempts: found.maxAttempts,
        event: run.event,
        checkpointItemId: this.checkpointing ? item.id : undefined,
      },
      steps,
    );
    let outcome: InvokeOutcome;
    try {
      this.stats.invocations += 1;
      const response = await this.requireServe()(request);
      outcome = await readOutcome(response, this.clock.now());
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      outcome = {
        type: 'error',
        error: { name: 'InvokeError', message },
        retriable: true,
        retryAt: undefined,
      };
    }
    // The usual end of a run goes through group commit; anything else (or a lost lease, a run that is
    // no longer running) takes the general path, which knows what to do in each case.
    const output = completedOutput(outcome);
    if (
      output &&
      (await this.completions.submit({ runId: item.runId, itemId: item.id, output: output.value }))
    ) {
      return;
    }
    const now = this.clock.now();
    await this.db.transaction((tx) =>
      endingRuns(tx, now, (released) =>
        applyOutcome(tx, item, outcome, {
          ...this.context(now, released),
          workerId: this.workerId,
          fn: found,
          backoff: (attempt) => this.backoff(attempt),
        }),
      ),
    );
  }

  /**
   * A step result the SDK checkpointed mid-invocation. Stored only while the invocation's queue item is
   * still leased by this worker and the run is live; otherwise the SDK is told the dispatch is stale.
   */
  private async checkpoint(runId: string, body: unknown): Promise<boolean> {
    const parsed = body as { qi_id?: string; steps?: OutgoingOp[] };
    const itemId = Number(parsed.qi_id);
    if (!Number.isSafeInteger(itemId) || !Array.isArray(parsed.steps)) return false;
    this.stats.checkpoints += 1;
    const steps = parsed.steps.filter((op) => op.op === 'StepRun' || op.op === 'Step');
    if (steps.length === 0) return true;
    return this.checkpoints.submit({
      runId,
      itemId,
      steps: steps.map((op) => ({ stepId: op.id, name: op.displayName ?? op.name ?? null, data: op.data })),
    });
  }

  /** Exponential backoff with jitter: base * 2^attempt, capped, then between half and all of it. */
  private backoff(attempt: number): number {
    const ceiling = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** attempt);
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  private async extendLeases(): Promise<void> {
    if (this.inFlight.size === 0) return;
    const ids = JSON.stringify([...this.inFlight.keys()]);
    await this.db
      .execute(
        sql`update executor_queue set leased_until = ${iso(this.clock.now() + this.leaseMs)}::timestamptz
            where leased_by = ${this.workerId} and id in (select (jsonb_array_elements_text(${ids}::jsonb))::bigint)`,
      )
      .catch((error: unknown) => this.logger.warn({ err: error }, 'lease heartbeat failed'));
  }
}

/** The run's result when an invocation ended it: a 200, or a 206 whose only op is RunComplete. */
function completedOutput(outcome: InvokeOutcome): { value: unknown } | undefined {
  if (outcome.type === 'complete') return { value: outcome.output };
  if (outcome.type === 'ops' && outcome.ops.length === 1 && outcome.ops[0]?.op === 'RunComplete') {
    return { value: outcome.ops[0].data ?? null };
  }
  return undefined;
}
