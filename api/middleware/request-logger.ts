import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../env';
import { loggerFor } from '../request-context';

export interface RequestLoggerOptions {
  /** Paths not logged on success (health probes every few seconds would drown the rest). */
  quietPaths?: string[];
  /**
   * Path prefixes whose successful requests are logged at debug instead of info. Telegram delivers a
   * webhook request per update, at the bots' message rate: an info line each made most of a busy
   * platform's log and cost ingress 15–30% of its updates/s (`bench:ingress` at the default
   * LOG_LEVEL), while Heroku's router logs every request already. Their failures keep warn and error.
   */
  debugPrefixes?: string[];
}

/**
 * One structured line per request: method, path (never the query, which could hold a secret), status
 * and duration, with the request id the services middleware bound to the logger.
 *
 * @example app.use(requestLogger({ quietPaths: ['/health'], debugPrefixes: ['/telegram/'] }))
 */
export function requestLogger(options: RequestLoggerOptions = {}) {
  const quiet = new Set(options.quietPaths ?? []);
  const debugPrefixes = options.debugPrefixes ?? [];
  const successLevel = (path: string) =>
    debugPrefixes.some((prefix) => path.startsWith(prefix)) ? 'debug' : 'info';
  return createMiddleware<AppEnv>(async function logRequest(c, next) {
    const started = performance.now();
    try {
      await next();
    } finally {
      const status = c.res.status;
      const path = c.req.path;
      if (!(quiet.has(path) && status < 400)) {
        const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : successLevel(path);
        if (c.get('services').logger.isLevelEnabled(level))
          loggerFor(c)[level](
            { method: c.req.method, path, status, durationMs: Math.round(performance.now() - started) },
            'request',
          );
      }
    }
  });
}
