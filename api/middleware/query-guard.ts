import { createMiddleware } from 'hono/factory';
import { AppError } from '../../lib/errors';
import type { AppEnv } from '../env';

/**
 * A query parameter sent to a route that takes none (`DELETE …?dryRun=true`) is refused, not
 * ignored: the caller meant something by it, and doing the request without it may not be what they
 * asked. The same 400 `unknown_field` as an unknown parameter of a route that has some.
 */
export function queryGuard(takesNoQuery: (method: string, path: string) => boolean) {
  return createMiddleware<AppEnv>(async function refuseUnknownQuery(c, next) {
    const names = [...new Set(new URL(c.req.url).searchParams.keys())];
    if (names.length > 0 && takesNoQuery(c.req.method, c.req.path)) {
      throw new AppError(
        'unknown_field',
        `Unknown field${names.length > 1 ? 's' : ''}: ${names.join(', ')}`,
        {
          details: {
            fields: names,
            issues: names.map((name) => ({
              field: `query.${name}`,
              message: 'this endpoint takes no query parameters',
            })),
          },
        },
      );
    }
    await next();
  });
}
