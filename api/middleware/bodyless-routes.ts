import type { OpenAPIHono } from '@hono/zod-openapi';
import { routeMethods } from '../route-pattern';

type Definition = OpenAPIHono['openAPIRegistry']['definitions'][number];

/**
 * Whether the documented route for a method and path declares no request body (rotate-key,
 * cancel, start, approve): read from the OpenAPI registry on the first call, once every route is
 * registered. Paths with no documented route at all are not bodyless (they are someone else's to
 * answer, with a 404 or 405).
 *
 * @example const takesNoBody = bodylessRoutes(() => app.openAPIRegistry.definitions)
 */
export function bodylessRoutes(
  definitions: () => readonly Definition[],
): (method: string, path: string) => boolean {
  const methodsOn = routeMethods(() =>
    definitions().flatMap((definition) =>
      definition.type === 'route' && definition.route.request?.body === undefined ? [definition.route] : [],
    ),
  );
  return (method, path) => methodsOn(path).has(method);
}
