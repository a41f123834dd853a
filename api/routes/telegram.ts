import type { OpenAPIHono } from '@hono/zod-openapi';
import { AppError } from '../../lib/errors';
import type { AppEnv } from '../env';
import { limitBody } from '../middleware/body-limit';

/** Telegram sends at most a few KB per update; anything far larger is not Telegram. */
const MAX_UPDATE_BYTES = 1024 * 1024;

/**
 * `POST /telegram/:agentId`, where Telegram delivers the agent's updates. 401 for a wrong secret
 * token; 200 once the update is stored (or acknowledged: malformed, or the agent is not answering);
 * 5xx only when the durable write failed, so Telegram delivers it again and nothing is lost.
 */
export function registerTelegramWebhook(app: OpenAPIHono<AppEnv>) {
  app.post(
    '/telegram/:agentId',
    limitBody({
      maxBytes: MAX_UPDATE_BYTES,
      onTooLarge: () => {
        throw new AppError('payload_too_large', `An update is at most ${MAX_UPDATE_BYTES} bytes`);
      },
    }),
    async (c) => {
      const agent = await c
        .get('telegramWebhookAuth')
        .authenticate(c.req.param('agentId'), c.req.header('x-telegram-bot-api-secret-token'));
      if (!agent) throw new AppError('unauthorized', 'Invalid secret token');
      if (!agent.answering) return c.json({ ok: true }, 200);
      let update: unknown;
      try {
        update = await c.req.json();
      } catch {
        c.get('logger').warn({ agentId: agent.id }, 'Telegram update is not JSON; acknowledged');
        return c.json({ ok: true }, 200);
      }
      await c.get('telegramIngress').ingest(agent, update, c.get('logger'));
      return c.json({ ok: true }, 200);
    },
  );
}
