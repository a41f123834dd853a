import { setTimeout as sleep } from 'node:timers/promises';
import { and, eq } from 'drizzle-orm';
import { GrammyError } from 'grammy';
import { readCredentialSecret } from '../credentials';
import { agents } from '../db/schema';
import type { SendEvent, StatementWithEvents } from '../jobs';
import type { Services } from '../services';
import { customerEventToSend } from '../webhooks/settings';
import { createTelegramApi } from './api';
import { classifyTelegramError, type TelegramErrorKind } from './errors';
import { TelegramIngress } from './ingress';

export interface PollerOptions {
  /** How often running agents are looked up (started and stopped loops follow). Default 2 s. */
  discoverEveryMs?: number;
  /** getUpdates long-poll `timeout` in seconds. Default 25. */
  pollTimeoutSeconds?: number;
  /** The embedded engine's one-statement send (see TelegramIngress). */
  eventsStatement?: StatementWithEvents | undefined;
}

export interface TelegramPoller {
  /** Agents being polled right now. */
  polling(): string[];
  stop(): Promise<void>;
}

/**
 * Long polling for running agents when there is no public webhook URL (a laptop): one getUpdates loop
 * per agent whose delivery is `polling`, each feeding the same ingress as the webhook. Telegram
 * allows one getUpdates per bot at a time, so run one worker process in this mode.
 */
export function startTelegramPolling(
  services: Services,
  sendEvent: SendEvent,
  options: PollerOptions = {},
): TelegramPoller {
  const discoverEveryMs = options.discoverEveryMs ?? 2_000;
  const timeout = options.pollTimeoutSeconds ?? 25;
  const logger = services.logger.child({ component: 'telegram-poller' });
  const ingress = new TelegramIngress({
    db: services.db,
    keyring: services.keyring,
    sendEvent,
    logger,
    eventsStatement: options.eventsStatement,
  });
  /** By agent id; `since` is the status change the loop began under (each start makes a new one). */
  const loops = new Map<string, { abort: AbortController; done: Promise<void>; since: number }>();
  const stopping = new AbortController();

  async function pollAgent(agent: { id: string; customerId: string }, signal: AbortSignal): Promise<void> {
    const token = await readCredentialSecret(services.db, services.keyring, agent.id, 'telegram');
    if (!token) return;
    const api = createTelegramApi(token, {
      apiRoot: services.config.telegram.apiRoot,
      timeoutMs: (timeout + 10) * 1000,
    });
    let offset: number | undefined;
    let failures = 0;
    let reported: string | undefined;
    while (!signal.aborted) {
      try {
        const updates = await api.getUpdates(
          {
            timeout,
            allowed_updates: ['message', 'edited_message'],
            ...(offset !== undefined ? { offset } : {}),
          },
          signal as Parameters<typeof api.getUpdates>[1],
        );
        failures = 0;
        reported = undefined;
        for (const update of updates) {
          // Stored before the offset moves past it: a crash here means Telegram sends it again (a no-op).
          await ingress.ingest(agent, update);
          offset = update.update_id + 1;
        }
      } catch (error) {
        if (signal.aborted) return;
        failures += 1;
        const kind = classifyTelegramError(error);
        logger.warn({ agentId: agent.id, kind: kind.kind }, 'getUpdates failed');
        const problem = pollingProblemOf(error, kind);
        if (problem && failures >= REPORT_AFTER_FAILURES && reported !== problem.code) {
          reported = problem.code;
          await reportPollingProblem(agent, problem);
        }
        const waitMs =
          kind.kind === 'retry_after'
            ? kind.seconds * 1000
            : Math.min(30_000, 1_000 * 2 ** Math.min(failures, 5));
        await sleep(waitMs, undefined, { signal }).catch(() => {});
      }
    }
  }

  /**
   * A polling problem no retry mends is the agent's last error and one agent.error, as a webhook
   * agent's delivery error is: the status would otherwise say running while no message comes in.
   */
  async function reportPollingProblem(
    agent: { id: string; customerId: string },
    problem: { code: string; message: string },
  ): Promise<void> {
    const at = new Date();
    try {
      await services.db
        .update(agents)
        .set({ lastError: problem.message, lastErrorCode: problem.code, lastErrorAt: at })
        .where(eq(agents.id, agent.id));
      await sendEvent([
        customerEventToSend({
          customerId: agent.customerId,
          agentId: agent.id,
          type: 'agent.error',
          data: { code: problem.code, message: problem.message },
          eventId: `${agent.id}-polling-${problem.code}-${at.getTime()}`,
          at,
        }),
      ]);
    } catch (error) {
      logger.error(
        { agentId: agent.id, err: error instanceof Error ? error.message : String(error) },
        'could not report a polling problem',
      );
    }
  }

  async function discover(): Promise<void> {
    const running = await services.db
      .select({ id: agents.id, customerId: agents.customerId, statusSince: agents.statusSince })
      .from(agents)
      .where(and(eq(agents.status, 'running'), eq(agents.telegramDelivery, 'polling')));
    // A loop reads the bot token once: an agent stopped and started again between two passes (its
    // token replaced meanwhile) gets a new loop, not the old one polling the old bot.
    const wanted = new Map(running.map((agent) => [agent.id, agent.statusSince.getTime()]));
    for (const [agentId, loop] of loops) {
      if (wanted.get(agentId) !== loop.since) {
        loop.abort.abort();
        loops.delete(agentId);
      }
    }
    for (const agent of running) {
      if (loops.has(agent.id)) continue;
      const abort = new AbortController();
      const done = pollAgent(agent, abort.signal).catch((error: unknown) => {
        logger.error(
          { agentId: agent.id, err: error instanceof Error ? error.message : String(error) },
          'poll loop ended',
        );
      });
      loops.set(agent.id, { abort, done, since: agent.statusSince.getTime() });
    }
  }

  const discovery = (async () => {
    while (!stopping.signal.aborted) {
      await discover().catch((error: unknown) => {
        logger.error(
          { err: error instanceof Error ? error.message : String(error) },
          'poller discovery failed',
        );
      });
      await sleep(discoverEveryMs, undefined, { signal: stopping.signal }).catch(() => {});
    }
  })();

  return {
    polling: () => [...loops.keys()],
    async stop() {
      stopping.abort();
      for (const loop of loops.values()) loop.abort.abort();
      await Promise.all([discovery, ...[...loops.values()].map((loop) => loop.done)]);
      loops.clear();
    },
  };
}

/** Polls in a row that fail the same way before it is reported (a restart's 409 passes by itself). */
const REPORT_AFTER_FAILURES = 3;

/** A getUpdates failure that waiting does not mend, as the agent's error code and message. */
function pollingProblemOf(
  error: unknown,
  kind: TelegramErrorKind,
): { code: string; message: string } | undefined {
  if (kind.kind === 'invalid_token') {
    return {
      code: 'telegram_token_revoked',
      message: 'Telegram no longer accepts the bot token (401): PUT a new one, then start the agent',
    };
  }
  if (error instanceof GrammyError && error.error_code === 409) {
    return {
      code: 'telegram_conflict',
      message: `Telegram refuses to hand out this bot's updates: ${error.description} (another process polls the bot, or a webhook is set)`,
    };
  }
  return undefined;
}
