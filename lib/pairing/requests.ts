import { and, desc, eq, lt, lte, or, type SQL } from 'drizzle-orm';
import type { Database, Queryable } from '../db/client';
import { pairingRequests } from '../db/schema';
import { matchesAllowFrom } from '../policy/access';
import { generatePairingCode, MAX_PENDING_PAIRINGS, PAIRING_CODE_TTL_MS } from './code';
import { lockAgent } from './lock';

export type PairingRequest = typeof pairingRequests.$inferSelect;
export type PairingStatus = PairingRequest['status'];

export interface PairingRequestInput {
  agentId: string;
  telegramUserId: number;
  username?: string | null | undefined;
  firstName?: string | null | undefined;
  chatId: number;
  now: Date;
  /** Where codes come from (default `generatePairingCode`); tests hand in a fixed sequence. */
  generateCode?: (() => string) | undefined;
}

export type RequestPairingResult =
  | { status: 'created'; code: string; expiresAt: Date; request: PairingRequest }
  | { status: 'existing'; code: string; expiresAt: Date; request: PairingRequest }
  | { status: 'limit_reached' };

/** Fresh codes tried before giving up; a collision in a 2^40 space is already rare. */
const CODE_ATTEMPTS = 10;

/** Marks pending requests whose hour is over as expired (one agent's, or every agent's). */
async function markExpired(db: Queryable, now: Date, agentId?: string): Promise<number> {
  const conditions: SQL[] = [eq(pairingRequests.status, 'pending'), lte(pairingRequests.expiresAt, now)];
  if (agentId !== undefined) conditions.push(eq(pairingRequests.agentId, agentId));
  const expired = await db
    .update(pairingRequests)
    .set({ status: 'expired', decidedAt: now })
    .where(and(...conditions))
    .returning({ id: pairingRequests.id });
  return expired.length;
}

/**
 * An unknown sender asks to talk to the agent (DM policy `pairing`). The same sender asking again while
 * their code is pending gets the same code; a new sender gets a fresh one unless the agent already has
 * `MAX_PENDING_PAIRINGS` pending codes of senders still not in `telegramAllowFrom`. Runs under a lock on the agent row, so concurrent requests
 * can neither give one sender two codes nor exceed the limit; the unique index on pending senders and
 * `on conflict do nothing` hold the first rule even without it.
 */
export async function requestPairing(
  db: Database,
  input: PairingRequestInput,
): Promise<RequestPairingResult> {
  const { agentId, telegramUserId, now } = input;
  return db.transaction(async (tx) => {
    const agent = await lockAgent(tx, agentId);
    await markExpired(tx, now, agentId);

    const pending = await tx
      .select()
      .from(pairingRequests)
      .where(and(eq(pairingRequests.agentId, agentId), eq(pairingRequests.status, 'pending')));
    const own = pending.find((request) => request.telegramUserId === telegramUserId);
    if (own) return { status: 'existing', code: own.code, expiresAt: own.expiresAt, request: own };
    // A sender the customer allow-listed by hand (not by approving) no longer waits for their code.
    const waiting = pending.filter(
      (request) => !matchesAllowFrom(agent.telegramAllowFrom, request.telegramUserId, request.username),
    );
    if (waiting.length >= MAX_PENDING_PAIRINGS) return { status: 'limit_reached' };

    const expiresAt = new Date(now.getTime() + PAIRING_CODE_TTL_MS);
    const nextCode = input.generateCode ?? generatePairingCode;
    for (let attempt = 0; attempt < CODE_ATTEMPTS; attempt++) {
      const [created] = await tx
        .insert(pairingRequests)
        .values({
          agentId,
          code: nextCode(),
          telegramUserId,
          username: input.username ?? null,
          firstName: input.firstName ?? null,
          chatId: input.chatId,
          expiresAt,
          createdAt: now,
        })
        .onConflictDoNothing()
        .returning();
      if (created) return { status: 'created', code: created.code, expiresAt, request: created };
      // Either the code is taken for this agent (try another) or this sender has a pending request.
      const [existing] = await tx
        .select()
        .from(pairingRequests)
        .where(
          and(
            eq(pairingRequests.agentId, agentId),
            eq(pairingRequests.telegramUserId, telegramUserId),
            eq(pairingRequests.status, 'pending'),
          ),
        );
      if (existing)
        return { status: 'existing', code: existing.code, expiresAt: existing.expiresAt, request: existing };
    }
    throw new Error(`no free pairing code after ${CODE_ATTEMPTS} attempts`);
  });
}

/** For the cron: marks every pending request whose hour is over as expired; returns how many. */
export async function expirePairingRequests(db: Queryable, now: Date): Promise<number> {
  return markExpired(db, now);
}

export interface ListPairingOptions {
  status?: PairingStatus | undefined;
  /** Pending requests that expire at or before this time are marked expired first (default: now). */
  now?: Date | undefined;
  /** At most this many, newest first (default 50, at most 200). */
  limit?: number | undefined;
  /** Keyset cursor: only requests older than this one. */
  before?: { createdAt: Date; id: string } | undefined;
}

export const DEFAULT_PAIRING_LIST_LIMIT = 50;
export const MAX_PAIRING_LIST_LIMIT = 200;

/** One agent's pairing requests, newest first; pending ones past their hour are marked expired first. */
export async function listPairingRequests(
  db: Queryable,
  agentId: string,
  options: ListPairingOptions = {},
): Promise<PairingRequest[]> {
  await markExpired(db, options.now ?? new Date(), agentId);
  const limit = Math.min(
    Math.max(1, Math.trunc(options.limit ?? DEFAULT_PAIRING_LIST_LIMIT)),
    MAX_PAIRING_LIST_LIMIT,
  );
  const conditions: (SQL | undefined)[] = [eq(pairingRequests.agentId, agentId)];
  if (options.status) conditions.push(eq(pairingRequests.status, options.status));
  if (options.before) {
    const { createdAt, id } = options.before;
    conditions.push(
      or(
        lt(pairingRequests.createdAt, createdAt),
        and(eq(pairingRequests.createdAt, createdAt), lt(pairingRequests.id, id)),
      ),
    );
  }
  return db
    .select()
    .from(pairingRequests)
    .where(and(...conditions))
    .orderBy(desc(pairingRequests.createdAt), desc(pairingRequests.id))
    .limit(limit);
}
