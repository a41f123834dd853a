import type { OpenAPIHono } from '@hono/zod-openapi';
import { AppError } from '../../lib/errors';
import type { AppEnv } from '../env';
import { limitBody } from '../middleware/body-limit';
import { loggerFor } from '../request-context';

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
      // A body that is not JSON is a malformed update: acknowledged (and logged) once authenticated.
      const update: unknown = await c.req.json().catch(() => undefined);
      const outcome = await c
        .get('telegramIngress')
        .receive(c.req.param('agentId'), c.req.header('x-telegram-bot-api-secret-token'), update, () =>
          loggerFor(c),
        );
      if (outcome.result === 'unauthorized') throw new AppError('unauthorized', 'Invalid secret token');
      return c.json({ ok: true }, 200);
    },
  );
}
