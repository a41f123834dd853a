import { and, eq } from 'drizzle-orm';
import type { Database, Transaction } from '../db/client';
import { agents, pairingRequests } from '../db/schema';
import { AppError } from '../errors';
import { normaliseAllowFromEntry } from '../policy/access';
import { MAX_ALLOW_FROM_ENTRIES } from '../schemas/agents';
import { normalisePairingCode } from './code';
import { lockAgent } from './lock';
import type { PairingRequest } from './requests';

export interface PairingDecisionInput {
  agentId: string;
  /** As the customer typed it: any case, spaces and dashes ignored. */
  code: string;
  now: Date;
}

/** Runs in the decision's transaction once the request is decided (the customer API's audit row). */
export type OnDecided = (tx: Transaction, request: PairingRequest) => Promise<void>;

export type PairingDecisionResult =
  | { status: 'approved' | 'rejected'; request: PairingRequest }
  /** No such code for this agent. */
  | { status: 'not_found' }
  /** The code was pending but its hour is over (it is now marked expired). */
  | { status: 'expired'; request: PairingRequest }
  /**
   * Not approved: `telegramAllowFrom` already holds `MAX_ALLOW_FROM_ENTRIES`, and one more would make
   * the agent's settings unsavable through the API. The code stays pending.
   */
  | { status: 'allowlist_full'; request: PairingRequest }
  /**
   * Approved, rejected or expired before. Nothing changes; the customer API treats an approve of an
   * approved code as the same approval again (decideOwnPairingRequest), every other case as a 404.
   */
  | { status: 'already_decided'; request: PairingRequest };

/**
 * Approves a pending code: the sender's numeric id joins the agent's `telegramAllowFrom` (once) and the
 * request is marked approved, in one transaction under the agent row's lock.
 */
export function approvePairing(
  db: Database,
  input: PairingDecisionInput,
  onDecided?: OnDecided,
): Promise<PairingDecisionResult> {
  return decide(db, input, 'approved', onDecided);
}

/** Rejects a pending code; the sender stays unknown and may ask again for a new code. */
export function rejectPairing(
  db: Database,
  input: PairingDecisionInput,
  onDecided?: OnDecided,
): Promise<PairingDecisionResult> {
  return decide(db, input, 'rejected', onDecided);
}

async function decide(
  db: Database,
  input: PairingDecisionInput,
  decision: 'approved' | 'rejected',
  onDecided: OnDecided | undefined,
): Promise<PairingDecisionResult> {
  const code = normalisePairingCode(input.code);
  if (code === null) return { status: 'not_found' };
  const { agentId, now } = input;
  return db.transaction(async (tx) => {
    // Agent first, then the request: the same lock order as requestPairing.
    const agent = await lockAgent(tx, agentId);
    const [request] = await tx
      .select()
      .from(pairingRequests)
      .where(and(eq(pairingRequests.agentId, agentId), eq(pairingRequests.code, code)))
      .for('update');
    if (!request) return { status: 'not_found' };
    if (request.status !== 'pending') return { status: 'already_decided', request };
    if (request.expiresAt.getTime() <= now.getTime()) {
      const [expired] = await tx
        .update(pairingRequests)
        .set({ status: 'expired', decidedAt: now })
        .where(eq(pairingRequests.id, request.id))
        .returning();
      return { status: 'expired', request: expired ?? request };
    }
    if (decision === 'approved') {
      const id = String(request.telegramUserId);
      const current = agent.telegramAllowFrom;
      if (!current.some((entry) => normaliseAllowFromEntry(entry) === id)) {
        if (current.length >= MAX_ALLOW_FROM_ENTRIES) return { status: 'allowlist_full', request };
        await tx
          .update(agents)
          .set({ telegramAllowFrom: [...current, id] })
          .where(eq(agents.id, agentId));
      }
    }
    const [decided] = await tx
      .update(pairingRequests)
      .set({ status: decision, decidedAt: now })
      .where(eq(pairingRequests.id, request.id))
      .returning();
    const result = decided ?? { ...request, status: decision, decidedAt: now };
    await onDecided?.(tx, result);
    return { status: decision, request: result };
  });
}

/**
 * The API error for a decision that did not happen. An unknown, expired or already decided code is a
 * 404, equally no code to act on (the message says which, for the customer); a full allowlist is a 409. The customer
 * API does not ask for one when an approved code is approved again: that answers the approval.
 */
export function pairingDecisionError(result: PairingDecisionResult): AppError | null {
  switch (result.status) {
    case 'approved':
    case 'rejected':
      return null;
    case 'not_found':
      return new AppError('pairing_request_not_found', 'No pairing request with this code');
    case 'expired':
      return new AppError('pairing_request_not_found', 'This pairing code has expired', {
        details: { status: 'expired' },
      });
    case 'allowlist_full':
      return new AppError(
        'allowlist_full',
        `telegramAllowFrom already holds ${MAX_ALLOW_FROM_ENTRIES} entries; remove one before approving`,
        { details: { field: 'telegramAllowFrom', max: MAX_ALLOW_FROM_ENTRIES } },
      );
    case 'already_decided':
      return new AppError(
        'pairing_request_not_found',
        `This pairing code was already ${result.request.status}`,
        {
          details: { status: result.request.status },
        },
      );
  }
}
