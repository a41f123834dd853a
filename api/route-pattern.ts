/**
 * A route path as an anchored pattern over request paths, in Hono's spelling
 * (`/agents/:id{[0-9a-f-]+}/credentials/:kind`, `*`) or OpenAPI's (`/agents/{id}/start`).
 */
export function routePattern(path: string): RegExp {
  let source = '';
  for (const part of path.split(/(:[A-Za-z0-9_]+(?:\{[^}]+\})?|\{[A-Za-z0-9_]+\}|\*)/)) {
    if (part === '*') source += '.*';
    else if (part.startsWith(':')) {
      const custom = /\{([^}]+)\}$/.exec(part)?.[1];
      source += custom ? `(?:${custom})` : '[^/]+';
    } else if (/^\{[A-Za-z0-9_]+\}$/.test(part)) source += '[^/]+';
    else source += part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  // Exactly: the router answers no path with a trailing slash (its strict mode), so neither does this.
  return new RegExp(`^${source}$`);
}

/**
 * Matches request paths against a route list read on the first call (once every route is
 * registered): the methods of the routes whose path matches.
 */
export function routeMethods(
  routes: () => readonly { method: string; path: string }[],
): (path: string) => Set<string> {
  let compiled: { method: string; pattern: RegExp }[] | undefined;
  return (path) => {
    compiled ??= routes().map((route) => ({
      method: route.method.toUpperCase(),
      pattern: routePattern(route.path),
    }));
    return new Set(compiled.filter((route) => route.pattern.test(path)).map((route) => route.method));
  };
}
