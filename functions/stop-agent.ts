import { eq } from 'drizzle-orm';
import { readCredentialSecret } from '../lib/credentials';
import { agents } from '../lib/db/schema';
import { WEBHOOK_NOT_REMOVED } from '../lib/lifecycle/remove-webhook';
import { transition } from '../lib/lifecycle/transitions';
import { createTelegramApi } from '../lib/telegram/api';
import { classifyTelegramError } from '../lib/telegram/errors';
import { emitAgentEvent } from './emit-customer-event';
import { AGENT_LIFECYCLE_CONCURRENCY, agentStopRequested } from './events';
import type { FunctionDeps } from './index';
import { telegramSlowDown } from './send-failure';

type AgentStop = ReturnType<typeof agentStopRequested.schema.parse>;

/** stopping -> stopped: removes the webhook (a revoked token has none left to remove) and tells the customer. */
export function stopAgent({ inngest, services }: FunctionDeps) {
  /** agent.stopped, its id from the stop event's: whichever path ends the stop, the customer gets one. */
  const tellStopped = (stop: AgentStop, stopEventId: string | undefined) =>
    emitAgentEvent(inngest, {
      customerId: stop.customerId,
      agentId: stop.agentId,
      type: 'agent.stopped',
      data: stop.reason ? { reason: stop.reason } : {},
      eventId: `${stopEventId ?? stop.agentId}-stopped`,
    });

  return inngest.createFunction(
    {
      id: 'stop-agent',
      triggers: [agentStopRequested],
      concurrency: AGENT_LIFECYCLE_CONCURRENCY,
      retries: 3,
      // Telegram down for every try: the agent stops all the same (updates for a stopped agent are
      // acknowledged and not answered), saying the webhook is still there, rather than stay stopping;
      // the reconcile cron removes it later.
      onFailure: async ({ event, error }) => {
        const stop = agentStopRequested.schema.parse(event.data.event.data);
        const message = `Telegram's webhook could not be removed (${error.message.slice(0, 300)}); updates that still arrive are not answered`;
        const stopped = await transition(services.db, stop.agentId, ['stopping'], 'stopped', {
          telegramDelivery: null,
          lastError: message,
          lastErrorCode: WEBHOOK_NOT_REMOVED,
          lastErrorAt: new Date(),
        });
        if (stopped) await tellStopped(stop, event.data.event.id);
      },
    },
    async ({ event, step }) => {
      const stop = agentStopRequested.schema.parse(event.data);
      const { agentId } = stop;
      await step.run('delete-webhook', async () => {
        const [agent] = await services.db.select().from(agents).where(eq(agents.id, agentId));
        if (agent?.status !== 'stopping') return;
        const token = await readCredentialSecret(services.db, services.keyring, agentId, 'telegram');
        if (!token) return;
        try {
          await createTelegramApi(token, {
            apiRoot: services.config.telegram.apiRoot,
            timeoutMs: 10_000,
          }).deleteWebhook();
        } catch (error) {
          const kind = classifyTelegramError(error);
          // A token Telegram no longer accepts has no webhook we could remove: stopping still succeeds.
          if (kind.kind === 'invalid_token' || kind.kind === 'fatal') return;
          if (kind.kind === 'retry_after') throw telegramSlowDown(kind.seconds);
          throw error;
        }
      });
      const stopped = await step.run('mark-stopped', async () =>
        Boolean(await transition(services.db, agentId, ['stopping'], 'stopped', { telegramDelivery: null })),
      );
      if (stopped) {
        await step.run('emit-agent-stopped', () => tellStopped(stop, event.id));
      }
      return { stopped };
    },
  );
}
