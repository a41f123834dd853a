import { randomBytes } from 'node:crypto';
import { and, eq, inArray, ne, sql } from 'drizzle-orm';
import type { RequestContext } from '../actor';
import { agentNotFound, findOwnAgent, toAgent } from '../agents';
import { recordAudit } from '../audit';
import { credentialFingerprint } from '../credentials';
import { credentialBinding, encryptSecret, type Keyring, last4 } from '../crypto';
import type { Database, Queryable } from '../db/client';
import { agents, credentials } from '../db/schema';
import { AppError } from '../errors';
import type { Agent } from '../schemas/agents';

type AgentRow = typeof agents.$inferSelect;
type AgentStatus = AgentRow['status'];

export interface TransitionResult {
  agent: Agent;
  /** False when the agent was already in (or on its way to) the wanted state: nothing to do. */
  changed: boolean;
}

/** Both credentials valid, or a 409 that says which is missing or not valid. */
async function assertReady(db: Queryable, agent: AgentRow): Promise<void> {
  const rows = await db
    .select()
    .from(credentials)
    .where(and(eq(credentials.agentId, agent.id), inArray(credentials.kind, ['telegram', 'claude'])));
  const problems: Record<string, string> = {};
  for (const kind of ['telegram', 'claude'] as const) {
    const row = rows.find((candidate) => candidate.kind === kind);
    if (!row) problems[kind] = 'not configured';
    else if (row.validationStatus !== 'valid') {
      problems[kind] = row.validationStatus
        ? `${row.validationStatus}: ${row.validationReason ?? ''}`.trim()
        : 'not validated';
    }
  }
  if (Object.keys(problems).length > 0) {
    throw new AppError(
      'agent_not_ready',
      'Both credentials must be valid before the agent starts: POST /api/v1/agents/{id}/credentials/validate',
      { details: { credentials: problems } },
    );
  }
}

interface Move {
  set: Partial<typeof agents.$inferInsert>;
  action: 'agent.start' | 'agent.stop';
}

/**
 * Runs `plan` on the customer's agent under its row lock, so concurrent calls make one transition;
 * `plan` answers undefined when the agent is already where it should be (idempotent), or throws.
 */
async function moveUnderLock(
  db: Database,
  context: RequestContext,
  customerId: string,
  agentId: string,
  plan: (agent: AgentRow, tx: Queryable) => Promise<Move | undefined>,
): Promise<TransitionResult> {
  return db.transaction(async (tx) => {
    const agent = await findOwnAgent(tx, customerId, agentId, { forUpdate: true });
    if (!agent) throw agentNotFound(agentId);
    const move = await plan(agent, tx);
    if (!move) return { agent: toAgent(agent), changed: false };
    const [row] = await tx
      .update(agents)
      .set({ ...move.set, statusSince: new Date() })
      .where(eq(agents.id, agentId))
      .returning();
    if (!row) throw agentNotFound(agentId);
    await recordAudit(tx, context, { action: move.action, targetType: 'agent', targetId: agentId });
    return { agent: toAgent(row), changed: true };
  });
}

/** Namespace of the transaction lock that serialises the starts of agents on one bot (any constant). */
const BOT_START_LOCK = 727_002;

/**
 * stopped/error -> starting. Starting or running already: nothing changes. The start function
 * (functions/start-agent.ts) does the rest.
 */
export function requestStart(
  db: Database,
  context: RequestContext,
  customerId: string,
  agentId: string,
): Promise<TransitionResult> {
  return moveUnderLock(db, context, customerId, agentId, async (agent, tx) => {
    if (agent.status === 'starting' || agent.status === 'running') return undefined;
    await assertReady(tx, agent);
    if (agent.telegramBotId !== null) {
      // Two agents of one bot starting at once each lock only their own row: without this lock both
      // checks pass and the loser's update hits agents_running_bot_idx, a 500 instead of this 409.
      await tx.execute(
        sql`select pg_advisory_xact_lock(${BOT_START_LOCK}, (${agent.telegramBotId}::bigint % 2147483647)::int)`,
      );
      const [other] = await tx
        .select({ id: agents.id })
        .from(agents)
        .where(
          and(
            eq(agents.telegramBotId, agent.telegramBotId),
            ne(agents.id, agent.id),
            inArray(agents.status, ['starting', 'running']),
          ),
        )
        .limit(1);
      if (other) {
        throw new AppError('bot_in_use', 'This Telegram bot already answers for another running agent', {
          details: { botUsername: agent.telegramBotUsername },
        });
      }
    }
    return { set: { status: 'starting', lastError: null, lastErrorCode: null }, action: 'agent.start' };
  });
}

/** starting/running/error -> stopping (the stop function removes the webhook). Stopped: nothing to do. */
export function requestStop(
  db: Database,
  context: RequestContext,
  customerId: string,
  agentId: string,
): Promise<TransitionResult> {
  return moveUnderLock(db, context, customerId, agentId, async (agent) =>
    agent.status === 'stopped' || agent.status === 'stopping'
      ? undefined
      : { set: { status: 'stopping' }, action: 'agent.stop' },
  );
}

/** Moves the agent to `to` only from one of `from` (a stop that came meanwhile wins over a late start). */
export async function transition(
  db: Queryable,
  agentId: string,
  from: AgentStatus[],
  to: AgentStatus,
  extra: Partial<typeof agents.$inferInsert> = {},
): Promise<AgentRow | undefined> {
  const [row] = await db
    .update(agents)
    .set({ status: to, statusSince: new Date(), ...extra })
    .where(and(eq(agents.id, agentId), inArray(agents.status, from)))
    .returning();
  return row;
}

/** A new random secret_token for the agent's webhook (Telegram allows 1-256 of A-Z a-z 0-9 _ -), stored encrypted. */
export async function rotateWebhookSecretToken(
  db: Queryable,
  keyring: Keyring,
  agent: AgentRow,
): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  const encrypted = encryptSecret(
    keyring,
    credentialBinding(agent.customerId, agent.id, 'telegram_webhook'),
    token,
  );
  const values = {
    ...encrypted,
    last4: last4(token),
    fingerprint: credentialFingerprint(keyring, 'telegram_webhook', token),
    updatedAt: new Date(),
  };
  await db
    .insert(credentials)
    .values({ agentId: agent.id, customerId: agent.customerId, kind: 'telegram_webhook', ...values })
    .onConflictDoUpdate({ target: [credentials.agentId, credentials.kind], set: values });
  return token;
}

/** Telegram updates the platform handles (setWebhook / getUpdates `allowed_updates`). */
export const ALLOWED_UPDATES = ['message', 'edited_message'] as const;

export function webhookUrlFor(baseUrl: string, agentId: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/telegram/${agentId}`;
}
