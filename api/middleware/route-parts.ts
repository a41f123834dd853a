import type { OpenAPIHono } from '@hono/zod-openapi';
import { routeMethods } from '../route-pattern';

type Definition = OpenAPIHono['openAPIRegistry']['definitions'][number];

/**
 * Whether the documented route for a method and path declares no request `body` (rotate-key,
 * cancel, start, approve, a DELETE) or no `query` (every route but the lists): read from the OpenAPI
 * registry on the first call, once every route is registered. Paths with no documented route at
 * all take either (they are someone else's to answer, with a 404 or 405).
 *
 * @example const takesNoBody = routesWithout('body', () => app.openAPIRegistry.definitions)
 */
export function routesWithout(
  part: 'body' | 'query',
  definitions: () => readonly Definition[],
): (method: string, path: string) => boolean {
  const methodsOn = routeMethods(() =>
    definitions().flatMap((definition) =>
      definition.type === 'route' && definition.route.request?.[part] === undefined ? [definition.route] : [],
    ),
  );
  return (method, path) => methodsOn(path).has(method);
}
