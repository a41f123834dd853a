import { randomUUID } from 'node:crypto';
import { inArray, sql } from 'drizzle-orm';
import { webhookSecretFingerprints } from '../credentials';
import type { Keyring } from '../crypto';
import { type Database, selectRows } from '../db/client';
import { telegramMessages } from '../db/schema';
import { GroupCommit } from '../group-commit';
import type { JobEvent, SendEvent, StatementWithEvents } from '../jobs';
import type { Logger } from '../logger';
import { isUuid } from '../pagination';
import {
  type CallResult,
  callWrites,
  type IngressCall,
  type ReadUpdate,
  type ResultRow,
  readUpdate,
  resultsOf,
  type UpdateRow,
} from './ingress-statement';
import { verifyWebhookSecretByDecrypting } from './webhook-auth';

/** The event the reply pipeline consumes for each stored update (functions/events.ts declares it). */
export const UPDATE_RECEIVED = 'telegram/update.received';

export interface StoredUpdateRef {
  agentId: string;
  customerId: string;
  /** telegram_messages.id of the stored inbound message. */
  messageId: string;
  chatId: number;
  updateId: number;
}

/**
 * The event for one stored update, built the same way by ingress and by the outbox sweeper: its id
 * `<agentId>:<update_id>` makes the engine drop a second copy. `chatKey` is the reply function's
 * concurrency key (one run at a time per agent and chat), a plain path in the CEL subset. Ingress
 * builds it without `customerId` (the agent's, which only the statement storing the update reads)
 * and adds that once known.
 */
export function updateReceivedEvent(
  ref: Omit<StoredUpdateRef, 'customerId'> & { customerId?: string },
): JobEvent {
  return {
    name: UPDATE_RECEIVED,
    id: `${ref.agentId}:${ref.updateId}`,
    data: { ...ref, chatKey: `${ref.agentId}:${ref.chatId}` },
  };
}

/** Outbox: these stored updates' events were accepted, so the sweeper leaves them alone. */
export async function markEventsSent(db: Database, messageIds: string[], at: Date): Promise<void> {
  await db.update(telegramMessages).set({ eventSentAt: at }).where(inArray(telegramMessages.id, messageIds));
}

export type IngestOutcome =
  | { result: 'stored'; messageId: string; eventSent: boolean }
  | { result: 'duplicate' }
  | { result: 'ignored'; reason: 'malformed' | 'no_message' | 'not_answering' }
  | { result: 'unauthorized' };

/**
 * The one ingress path of Telegram updates, for the webhook and for long polling alike: the update is
 * stored first (update_id is unique per agent, so a redelivery is a no-op), then its event is sent
 * with id `<agentId>:<update_id>` (the engine drops a second one), then the row is marked as sent.
 * If sending fails after the write, the row keeps `event_sent_at` null for the outbox sweeper: a crash
 * between the two loses nothing. A malformed update is acknowledged and logged, never retried forever.
 *
 * With an engine that keeps its events in this database (`eventsStatement`, the embedded executor),
 * the update and its event are written in one statement instead, already marked sent: both are
 * stored or neither is, in one round trip, and there is no gap for the sweeper to cover.
 *
 * A webhook call (`receive`) is authenticated by the statement that stores its update: it compares
 * the keyed fingerprint of the presented secret_token with the one stored with the agent's secret,
 * and stores the update only when they match and the agent is answering. Comparing fingerprints
 * (HMACs under the master key) in SQL leaks nothing usable through timing: which byte of two HMACs
 * differs says nothing about the secret. An agent whose secret has no fingerprint yet (stored before
 * they were kept) is checked by decrypting it in constant time (`verifyWebhookSecretByDecrypting`),
 * which also stores the fingerprint for the next calls.
 *
 * Calls arriving together (a busy bot, several bots) share the work (group commit): one statement
 * authenticates and stores them all with their chats (and their events, with `eventsStatement`);
 * otherwise one `send` carries all their events, and one statement marks them sent, after the call
 * has resolved. A call resolves once its own update is stored and its event sent (or left for the
 * sweeper); it throws only when the write failed (the webhook then answers 5xx, so Telegram delivers
 * it again).
 *
 * @example
 * const ingress = new TelegramIngress({ db, keyring, sendEvent, logger, eventsStatement: executor.statement });
 * const outcome = await ingress.receive(agentId, c.req.header('x-telegram-bot-api-secret-token'), await c.req.json());
 */
export class TelegramIngress {
  private readonly db: Database;
  private readonly keyring: Keyring;
  private readonly sendEvent: SendEvent;
  private readonly logger: Logger;
  private readonly writes: GroupCommit<IngressCall, CallResult>;
  private readonly marks: GroupCommit<string, undefined>;
  private readonly eventsStatement: StatementWithEvents | undefined;

  constructor(deps: {
    db: Database;
    keyring: Keyring;
    sendEvent: SendEvent;
    logger: Logger;
    eventsStatement?: StatementWithEvents | undefined;
  }) {
    this.db = deps.db;
    this.keyring = deps.keyring;
    this.sendEvent = deps.sendEvent;
    this.logger = deps.logger;
    this.eventsStatement = deps.eventsStatement;
    // Two batches in flight, not more: bigger batches did better than more of them (bench:ingress).
    // Telegram delivers a webhook's updates over several connections at once, so one chat's quick
    // messages can arrive in any order: each batch is written in update_id order, and one chat's
    // updates are never in two batches at once (two statements in flight commit, and queue their
    // events, in either order).
    this.writes = new GroupCommit((calls) => this.store(calls), {
      maxParallel: 2,
      order: (a, b) =>
        a.agentId.localeCompare(b.agentId) || (a.update?.updateId ?? 0) - (b.update?.updateId ?? 0),
      orderKey: (call) => (call.update ? `${call.agentId}:${call.update.chat.id}` : undefined),
    });
    // Best effort: a batch that cannot be marked is logged once and left to the sweeper, rather than
    // retried row by row against a database that is failing anyway.
    this.marks = new GroupCommit(
      async (ids) => {
        await markEventsSent(this.db, ids, new Date()).catch((error: unknown) => this.markFailed(ids, error));
        return ids.map(() => undefined);
      },
      { maxParallel: 1, maxBatch: 1000 },
    );
  }

  /**
   * A webhook call for `pathAgentId` (any case) presenting `presented` as its secret_token: `unauthorized` for a
   * wrong secret and for an agent that does not exist alike (the caller's 401 says nothing about
   * which); an agent that is not answering gets its update acknowledged, not stored.
   */
  async receive(
    pathAgentId: string,
    presented: string | undefined,
    raw: unknown,
    logger: () => Logger = () => this.logger,
  ): Promise<IngestOutcome> {
    if (!presented || !isUuid(pathAgentId)) return { result: 'unauthorized' };
    // Event ids and chat keys are text: a URL with the id in capitals must build the same ones.
    const agentId = pathAgentId.toLowerCase();
    const read = readUpdate(raw);
    const fingerprints = webhookSecretFingerprints(this.keyring, presented);
    const done = await this.writes.submit({ agentId, fingerprints, update: read.row });
    if (done.verdict === 'unverified') {
      const agent = await verifyWebhookSecretByDecrypting(this.db, this.keyring, agentId, presented);
      if (!agent) return { result: 'unauthorized' };
      if (!agent.answering) return { result: 'ignored', reason: 'not_answering' };
      return this.ingest(agent, raw, logger);
    }
    if (done.verdict !== 'ok') return { result: 'unauthorized' };
    if (!done.answering) return { result: 'ignored', reason: 'not_answering' };
    return outcomeOf(agentId, read, done, logger);
  }

  /** An update for an agent the caller knows (long polling): stored whatever the agent's status. */
  async ingest(
    agent: { id: string },
    raw: unknown,
    logger: () => Logger = () => this.logger,
  ): Promise<IngestOutcome> {
    const read = readUpdate(raw);
    if (!read.row) return outcomeOf(agent.id, read, undefined, logger);
    const done = await this.writes.submit({ agentId: agent.id, fingerprints: undefined, update: read.row });
    // The agent was deleted since the caller read it: there is nobody to answer.
    if (done.verdict !== 'trusted') return { result: 'ignored', reason: 'not_answering' };
    return outcomeOf(agent.id, read, done, logger);
  }

  private markFailed(ids: string[], error: unknown): void {
    this.logger.warn(
      { updates: ids.length, err: error instanceof Error ? error.message : String(error) },
      'updates not marked sent: the sweeper will send their events again (the engine drops the copies)',
    );
  }

  private async store(calls: IngressCall[]): Promise<CallResult[]> {
    // Each update's message id is chosen here, so its event can be built before the write. The
    // event's customerId is the agent's, which only the statement reads: added once it has.
    const messageIds = calls.map(() => randomUUID());
    const events = calls.map((call, index) =>
      call.update ? eventOf(call.agentId, call.update, messageIds[index] as string) : undefined,
    );
    const statement = callWrites(
      calls,
      messageIds,
      events.map((event) => event?.id),
      this.eventsStatement !== undefined,
    );
    if (this.eventsStatement) {
      // One statement: the updates with their events, or neither (the webhook answers 5xx). The gate
      // merges the customer into each event's data.
      const rows = await this.eventsStatement<ResultRow>(
        statement,
        events.filter((event) => event !== undefined),
      );
      return resultsOf(calls, rows, true);
    }
    const rows = await selectRows<ResultRow>(this.db, sql`with ${statement.writes} ${statement.select}`);
    const stored = rows.filter((row) => row.message_id !== null).sort((a, b) => a.ord - b.ord);
    if (stored.length === 0) return resultsOf(calls, rows, false);
    let eventSent = false;
    try {
      await this.sendEvent(
        stored.map((row) => {
          const event = events[row.ord] as JobEvent;
          return { ...event, data: { ...event.data, customerId: row.customer_id } };
        }),
      );
      eventSent = true;
    } catch (error) {
      this.logger.error(
        {
          agentIds: [...new Set(stored.map((row) => calls[row.ord]?.agentId))],
          updates: stored.length,
          err: error instanceof Error ? error.message : String(error),
        },
        'updates stored, events not sent: left for the sweeper',
      );
    }
    // Marked off the request's path, many batches in one statement: a mark that never lands only
    // makes the sweeper send the event again, with the same id, which the engine drops.
    if (eventSent) for (const row of stored) void this.marks.submit(row.message_id as string);
    return resultsOf(calls, rows, eventSent);
  }
}

/** What an authenticated call with an answering agent (or a known one) comes to. */
function outcomeOf(
  agentId: string,
  read: ReadUpdate,
  done: CallResult | undefined,
  logger: () => Logger,
): IngestOutcome {
  if (!read.row) {
    if (read.reason === 'malformed') {
      logger().warn({ agentId, issues: read.issues }, 'malformed Telegram update acknowledged');
    }
    return { result: 'ignored', reason: read.reason };
  }
  return done?.messageId
    ? { result: 'stored', messageId: done.messageId, eventSent: done.eventSent }
    : { result: 'duplicate' };
}

function eventOf(agentId: string, update: UpdateRow, messageId: string): JobEvent {
  return updateReceivedEvent({
    agentId,
    messageId,
    chatId: update.chat.id,
    updateId: update.updateId,
  });
}
