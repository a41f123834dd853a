import { routeMethods } from '../route-pattern';

/** A route as Hono lists it (`app.routes`): middleware is registered under the method `ALL`. */
interface ListedRoute {
  method: string;
  path: string;
}

/**
 * The methods some route answers on a path (HEAD with GET, as Hono serves it), for a 405's
 * `Allow` header: empty when no route has the path at all (a 404). The routes are read on the
 * first call, once every route is registered.
 *
 * @example const allowed = allowedMethods(() => app.routes); allowed('/api/v1/agents') // ['GET', 'HEAD', 'POST']
 */
export function allowedMethods(routes: () => readonly ListedRoute[]): (path: string) => string[] {
  const methodsOn = routeMethods(() => routes().filter((route) => route.method !== 'ALL'));
  return (path) => {
    const methods = methodsOn(path);
    if (methods.has('GET')) methods.add('HEAD');
    return [...methods].sort();
  };
}
