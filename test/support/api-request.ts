/** What the tests call the platform's Hono app through (`app.request`), without a server. */
interface RequestsApp {
  request(path: string, init: RequestInit): Response | Promise<Response>;
}

/**
 * A request to the app with `Authorization: Bearer <key>` (none when `key` is null) and, when given,
 * a JSON body (a string or bytes go as they are, for bodies that are not JSON on purpose).
 */
export async function apiRequest(
  app: RequestsApp,
  method: string,
  path: string,
  options: { key: string | null; body?: unknown; headers?: Record<string, string> },
): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key !== null) headers.authorization = `Bearer ${options.key}`;
  if (options.body === undefined) return app.request(path, { method, headers });
  headers['content-type'] ??= 'application/json';
  const body =
    typeof options.body === 'string' || options.body instanceof Uint8Array
      ? options.body
      : JSON.stringify(options.body);
  return app.request(path, { method, headers, body });
}
