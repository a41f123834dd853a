import { isIP } from 'node:net';
import type { Context } from 'hono';
import type { RequestContext } from '../lib/actor';
import type { Logger } from '../lib/logger';
import type { AppEnv } from './env';

/**
 * The client's address, for the audit log: each trusted proxy (Heroku's router, a load balancer)
 * appends the address it was connected from to X-Forwarded-For, so the client is the entry
 * `trustProxyHops` from the right; the entries before it are whatever the client sent, and are
 * never believed. Without such an entry, or with hops 0, the socket's peer.
 */
function clientIp(c: Context<AppEnv>): string | undefined {
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  const peer = incoming?.socket?.remoteAddress;
  const hops = c.get('services').config.trustProxyHops;
  if (hops === 0) return peer;
  const forwarded = c.req.header('x-forwarded-for')?.split(',') ?? [];
  const client = forwarded[forwarded.length - hops]?.trim();
  return client && isIP(client) !== 0 ? client : peer;
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
