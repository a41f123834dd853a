import { createMiddleware } from 'hono/factory';
import { findApiKeyOwner, isAdminKey, markApiKeyUsed } from '../../lib/api-keys';
import { AppError } from '../../lib/errors';
import { limitsFor } from '../../lib/ratelimit/plans';
import type { Actor, AppEnv } from '../env';
import { enforceApiLimit } from './rate-limit';

/**
 * The key of `Authorization: Bearer <key>` or `X-API-Key: <key>`; an Authorization header of any
 * other shape is refused as such, so a client sending `Basic …` or a bare key is told what is wrong.
 */
function presentedKey(header: (name: string) => string | undefined): string {
  const authorization = header('authorization');
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match?.[1]) {
      throw new AppError(
        'unauthorized',
        'Malformed Authorization header: send "Authorization: Bearer <key>" (or the key alone as X-API-Key)',
      );
    }
    return match[1];
  }
  const key = header('x-api-key')?.trim();
  if (!key) throw new AppError('unauthorized', 'Missing API key: send it as "Authorization: Bearer <key>"');
  return key;
}

const badKey = () => new AppError('unauthorized', 'Invalid API key');

/**
 * Admin routes: the operator's ADMIN_API_KEY, compared in constant time.
 *
 * @example app.use('/api/v1/admin/*', requireAdmin())
 */
export function requireAdmin() {
  return createMiddleware<AppEnv>(async function authenticateAdmin(c, next) {
    const key = presentedKey((name) => c.req.header(name));
    const { config } = c.get('services');
    if (!isAdminKey(key, config.secrets.adminApiKey)) throw badKey();
    c.set('actor', { type: 'admin' });
    await enforceApiLimit(c, 'admin', config.adminRateLimitPerHour);
    await next();
  });
}

/**
 * Customer routes: an active API key of an active customer. A suspended customer's key gets 403.
 *
 * @example app.use('/api/v1/agents/*', requireCustomer())
 */
export function requireCustomer() {
  return createMiddleware<AppEnv>(async function authenticateCustomer(c, next) {
    const key = presentedKey((name) => c.req.header(name));
    const { db } = c.get('services');
    const owner = await findApiKeyOwner(db, key);
    if (!owner || !(await markApiKeyUsed(db, owner))) throw badKey();
    if (owner.customerStatus === 'suspended') {
      throw new AppError('customer_suspended', 'This customer account is suspended');
    }
    c.set('actor', {
      type: 'customer',
      customerId: owner.customerId,
      keyId: owner.keyId,
      keyPrefix: owner.keyPrefix,
    });
    // Plan and overrides come with the key lookup: no extra query per request.
    const { apiRequestsPerHour } = limitsFor({ ...owner, messagesPerDay: null });
    await enforceApiLimit(c, `customer:${owner.customerId}`, apiRequestsPerHour);
    await next();
  });
}

/** The customer id of a request that passed `requireCustomer()`. */
export function customerIdOf(actor: Actor): string {
  if (actor.type !== 'customer') throw new AppError('forbidden', 'This route is for customer API keys');
  return actor.customerId;
}
