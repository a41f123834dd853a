import { createMiddleware } from 'hono/factory';
import { findApiKeyOwner, isAdminKey } from '../../lib/api-keys';
import { AppError } from '../../lib/errors';
import { limitsFor } from '../../lib/ratelimit/plans';
import type { Actor, AppEnv } from '../env';
import { enforceApiLimit } from './rate-limit';

/** `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
function presentedKey(header: (name: string) => string | undefined): string | undefined {
  const authorization = header('authorization');
  if (authorization) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return match?.[1];
  }
  return header('x-api-key')?.trim() || undefined;
}

const missingKey = () =>
  new AppError('unauthorized', 'Missing API key: send it as "Authorization: Bearer <key>"');
const badKey = () => new AppError('unauthorized', 'Invalid API key');

/**
 * Admin routes: the operator's ADMIN_API_KEY, compared in constant time.
 *
 * @example app.use('/api/v1/admin/*', requireAdmin())
 */
export function requireAdmin() {
  return createMiddleware<AppEnv>(async function authenticateAdmin(c, next) {
    const key = presentedKey((name) => c.req.header(name));
    if (!key) throw missingKey();
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
    if (!key) throw missingKey();
    const owner = await findApiKeyOwner(c.get('services').db, key);
    if (!owner) throw badKey();
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
