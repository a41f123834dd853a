import type { Context } from 'hono';
import type { RequestContext } from '../lib/actor';
import type { Logger } from '../lib/logger';
import type { AppEnv } from './env';

/**
 * The client's address: the first X-Forwarded-For hop (Heroku's router sets it; the app is never
 * reachable there without it), else the socket's peer when served by @hono/node-server.
 */
function clientIp(c: Context<AppEnv>): string | undefined {
  const forwarded = c.req.header('x-forwarded-for')?.split(',')[0]?.trim();
  if (forwarded) return forwarded;
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  return incoming?.socket?.remoteAddress;
}

/** Who is asking and from where, for the audit log. */
export function requestContext(c: Context<AppEnv>): RequestContext {
  return { actor: c.get('actor'), requestId: c.get('requestId'), ip: clientIp(c) };
}

/**
 * The services' logger bound to this request's id, made when the request first logs: a pino child
 * runs the redaction over its bindings, a cost most requests (a webhook call logs nothing below
 * info) would pay for nothing.
 */
export function loggerFor(c: Context<AppEnv>): Logger {
  let logger = c.get('logger');
  if (!logger) {
    logger = c.get('services').logger.child({ requestId: c.get('requestId') });
    c.set('logger', logger);
  }
  return logger;
}
