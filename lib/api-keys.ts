import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { and, eq, isNull, lt, or } from 'drizzle-orm';
import type { Queryable } from './db/client';
import { apiKeys, customers } from './db/schema';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const API_KEY_PREFIX = 'oc_';
/** 43 base62 characters carry 256 bits; the key is `oc_` + 43 characters. */
const KEY_BODY_LENGTH = 43;
export const API_KEY_PATTERN = /^oc_[0-9A-Za-z]{43}$/;

/** Base62 of 32 random bytes, by rejection sampling so every character is equally likely. */
function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export interface GeneratedApiKey {
  /** The whole key: shown to the customer once, never stored. */
  key: string;
  /** `oc_` + 8 characters, safe to show and log. */
  prefix: string;
  /** Hex SHA-256 of the key: what the database keeps. */
  hash: string;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function generateApiKey(): GeneratedApiKey {
  const key = `${API_KEY_PREFIX}${randomBase62(KEY_BODY_LENGTH)}`;
  return { key, prefix: key.slice(0, API_KEY_PREFIX.length + 8), hash: hashApiKey(key) };
}

/** Constant-time comparison of a presented key with the configured admin key (hashes equalise lengths). */
export function isAdminKey(presented: string, adminKey: string): boolean {
  return timingSafeEqual(
    createHash('sha256').update(presented).digest(),
    createHash('sha256').update(adminKey).digest(),
  );
}

export interface ApiKeyOwner {
  customerId: string;
  customerStatus: 'active' | 'suspended';
  plan: 'free' | 'pro' | 'enterprise';
  apiRequestsPerHour: number | null;
  keyId: string;
  keyPrefix: string;
  lastUsedAt: Date | null;
}

/**
 * Finds the active key with this value. The lookup is by SHA-256 hash through a unique index: the
 * hash of a wrong key finds nothing, and nothing about the key's characters leaks through timing.
 */
export async function findApiKeyOwner(db: Queryable, presented: string): Promise<ApiKeyOwner | undefined> {
  if (!API_KEY_PATTERN.test(presented)) return undefined;
  const [row] = await db
    .select({
      customerId: apiKeys.customerId,
      customerStatus: customers.status,
      plan: customers.plan,
      apiRequestsPerHour: customers.apiRequestsPerHour,
      keyId: apiKeys.id,
      keyPrefix: apiKeys.prefix,
      lastUsedAt: apiKeys.lastUsedAt,
    })
    .from(apiKeys)
    .innerJoin(customers, eq(customers.id, apiKeys.customerId))
    .where(and(eq(apiKeys.hash, hashApiKey(presented)), isNull(apiKeys.revokedAt)))
    .limit(1);
  return row;
}

/** How stale a key's `lastUsedAt` may get: marking every request would be a write per request. */
export const KEY_USE_MARK_INTERVAL_MS = 60_000;

/**
 * Records that `owner`'s key was used, at most once a minute; the first use is always recorded, and
 * before the request goes on, so a key that has authenticated anything shows it (a customer create
 * retried with its Idempotency-Key replaces only a key nobody has used). False when the key was
 * revoked since it was looked up (by such a retry, or a rotation): the request must not go on.
 */
export async function markApiKeyUsed(db: Queryable, owner: ApiKeyOwner, now = new Date()): Promise<boolean> {
  if (owner.lastUsedAt && now.getTime() - owner.lastUsedAt.getTime() < KEY_USE_MARK_INTERVAL_MS) return true;
  // Guarded in the statement: of requests marking at once, the first writes and the rest, re-checking
  // the row it wrote, do not; and a revocation committed first makes it write nothing.
  const marked = await db
    .update(apiKeys)
    .set({ lastUsedAt: now })
    .where(
      and(
        eq(apiKeys.id, owner.keyId),
        isNull(apiKeys.revokedAt),
        or(
          isNull(apiKeys.lastUsedAt),
          lt(apiKeys.lastUsedAt, new Date(now.getTime() - KEY_USE_MARK_INTERVAL_MS)),
        ),
      ),
    )
    .returning({ id: apiKeys.id });
  if (marked.length > 0) return true;
  // Someone else marked it, or it was revoked: a statement of its own sees which, as committed.
  const [key] = await db
    .select({ revokedAt: apiKeys.revokedAt })
    .from(apiKeys)
    .where(eq(apiKeys.id, owner.keyId));
  return key !== undefined && key.revokedAt === null;
}
