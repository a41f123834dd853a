import { eq } from 'drizzle-orm';
import { NonRetriableError } from 'inngest';
import { readCredentialSecret } from '../lib/credentials';
import { agents } from '../lib/db/schema';
import {
  ALLOWED_UPDATES,
  rotateWebhookSecretToken,
  transition,
  webhookUrlFor,
} from '../lib/lifecycle/transitions';
import { createTelegramApi } from '../lib/telegram/api';
import { classifyTelegramError } from '../lib/telegram/errors';
import { emitAgentEvent } from './emit-customer-event';
import { AGENT_LIFECYCLE_CONCURRENCY, agentStartRequested } from './events';
import type { FunctionDeps } from './index';
import { telegramSlowDown } from './send-failure';

/**
 * starting -> running: registers the webhook with a fresh secret_token (or, without a public base
 * URL, clears any webhook so the worker's long polling can serve the bot). A failure moves the agent
 * to error with the reason and tells the customer (agent.error).
 */
export function startAgent({ inngest, services }: FunctionDeps) {
  return inngest.createFunction(
    {
      id: 'start-agent',
      triggers: [agentStartRequested],
      concurrency: AGENT_LIFECYCLE_CONCURRENCY,
      retries: 3,
      onFailure: async ({ event, error }) => {
        const { agentId, customerId } = agentStartRequested.schema.parse(event.data.event.data);
        const failed = await transition(services.db, agentId, ['starting'], 'error', {
          lastError: error.message.slice(0, 500),
          lastErrorCode: 'start_failed',
          lastErrorAt: new Date(),
        });
        if (failed) {
          await emitAgentEvent(inngest, {
            customerId,
            agentId,
            type: 'agent.error',
            data: { code: 'start_failed', message: error.message.slice(0, 500) },
            eventId: `${event.data.event.id ?? agentId}-start-failed`,
          });
        }
      },
    },
    async ({ event, step }) => {
      const { agentId, customerId } = agentStartRequested.schema.parse(event.data);
      const delivery = await step.run('register-webhook', async () => {
        const [agent] = await services.db.select().from(agents).where(eq(agents.id, agentId));
        if (agent?.status !== 'starting') return 'skipped' as const;
        const token = await readCredentialSecret(services.db, services.keyring, agentId, 'telegram');
        if (!token) throw new NonRetriableError('the Telegram bot token was removed');
        const api = createTelegramApi(token, {
          apiRoot: services.config.telegram.apiRoot,
          timeoutMs: 10_000,
        });
        try {
          const base = services.config.telegram.webhookBaseUrl;
          if (!base) {
            // Long polling needs no webhook (Telegram refuses getUpdates while one is set).
            await api.deleteWebhook({ drop_pending_updates: false });
            return 'polling' as const;
          }
          const secret = await rotateWebhookSecretToken(services.db, services.keyring, agent);
          await api.setWebhook(webhookUrlFor(base, agentId), {
            secret_token: secret,
            allowed_updates: [...ALLOWED_UPDATES],
          });
          return 'webhook' as const;
        } catch (error) {
          const kind = classifyTelegramError(error);
          if (kind.kind === 'invalid_token' || kind.kind === 'fatal' || kind.kind === 'bad_entities') {
            throw new NonRetriableError(
              `Telegram refused the webhook: ${'description' in kind ? kind.description : kind.kind}`,
            );
          }
          // 429: wait as long as Telegram asks, not the engine's shorter backoff (which spent the
          // retries within seconds and left the agent in error).
          if (kind.kind === 'retry_after') throw telegramSlowDown(kind.seconds);
          throw error;
        }
      });
      if (delivery === 'skipped') return { started: false };

      const running = await step.run('mark-running', async () =>
        Boolean(
          await transition(services.db, agentId, ['starting'], 'running', { telegramDelivery: delivery }),
        ),
      );
      if (running) {
        await step.run('emit-agent-started', () =>
          emitAgentEvent(inngest, {
            customerId,
            agentId,
            type: 'agent.started',
            data: { status: 'running' },
            eventId: `${event.id ?? agentId}-started`,
          }),
        );
      }
      return { started: running, delivery };
    },
  );
}
