import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../env';
import { loggerFor } from '../request-context';

export interface RequestLoggerOptions {
  /** Paths not logged on success (health probes every few seconds would drown the rest). */
  quietPaths?: string[];
}

/**
 * One structured line per request: method, path (never the query, which could hold a secret), status
 * and duration, with the request id the services middleware bound to the logger.
 *
 * @example app.use(requestLogger({ quietPaths: ['/health'] }))
 */
export function requestLogger(options: RequestLoggerOptions = {}) {
  const quiet = new Set(options.quietPaths ?? []);
  return createMiddleware<AppEnv>(async function logRequest(c, next) {
    const started = performance.now();
    try {
      await next();
    } finally {
      const status = c.res.status;
      const path = c.req.path;
      if (!(quiet.has(path) && status < 400)) {
        const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
        if (c.get('services').logger.isLevelEnabled(level))
          loggerFor(c)[level](
            { method: c.req.method, path, status, durationMs: Math.round(performance.now() - started) },
            'request',
          );
      }
    }
  });
}
