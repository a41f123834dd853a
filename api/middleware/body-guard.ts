import { every } from 'hono/combine';
import { createMiddleware } from 'hono/factory';
import { AppError } from '../../lib/errors';
import type { AppEnv } from '../env';
import { limitBody } from './body-limit';

export interface BodyGuardOptions {
  /** Largest accepted body in bytes. */
  maxBytes?: number;
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * API bodies are JSON and small: anything else is a 415 or a 413 in the one error shape, before a
 * handler or a parser sees it.
 *
 * @example app.use('/api/v1/*', bodyGuard({ maxBytes: 64 * 1024 }))
 */
export function bodyGuard(options: BodyGuardOptions = {}) {
  const maxBytes = options.maxBytes ?? 64 * 1024;
  const requireJson = createMiddleware<AppEnv>(async function requireJsonBody(c, next) {
    const hasBody =
      BODY_METHODS.has(c.req.method) &&
      (Number(c.req.header('content-length') ?? 0) > 0 || c.req.header('transfer-encoding') !== undefined);
    if (hasBody) {
      const type = c.req.header('content-type')?.split(';')[0]?.trim().toLowerCase();
      if (type !== 'application/json') {
        throw new AppError('unsupported_media_type', 'Send the body as application/json', {
          details: { contentType: type ?? null },
        });
      }
    }
    await next();
  });
  const limit = limitBody({
    maxBytes,
    onTooLarge: () => {
      throw new AppError('payload_too_large', `The body is larger than ${maxBytes} bytes`, {
        details: { maxBytes },
      });
    },
  });
  return every(requireJson, limit);
}
