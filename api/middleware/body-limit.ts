import { bodyLimit } from 'hono/body-limit';
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../env';

/**
 * A body-size limit that leaves the body alone when `Content-Length` already says its size (Node's
 * HTTP parser never reads past it): then the handler's `c.req.json()` takes @hono/node-server's
 * direct path instead of a WHATWG stream, which Hono's `bodyLimit` builds to count a body's bytes
 * (about a tenth of a webhook call's CPU). A chunked body is counted as Hono's `bodyLimit` does.
 *
 * @example app.post('/hook', limitBody({ maxBytes: 1024, onTooLarge }), handler)
 */
export function limitBody(options: { maxBytes: number; onTooLarge: () => never }) {
  const counted = bodyLimit({ maxSize: options.maxBytes, onError: options.onTooLarge });
  return createMiddleware<AppEnv>(async function limitBody(c, next) {
    const declared = c.req.header('content-length');
    if (declared !== undefined && c.req.header('transfer-encoding') === undefined) {
      if (Number(declared) > options.maxBytes) options.onTooLarge();
      await next();
      return;
    }
    await counted(c, next);
  });
}
