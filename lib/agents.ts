import { and, count, desc, eq, type SQL } from 'drizzle-orm';
import type { RequestContext } from './actor';
import { recordAudit } from './audit';
import { changedFields } from './changed-fields';
import { findCustomerRow } from './customers';
import type { Database, Queryable } from './db/client';
import { agents } from './db/schema';
import { AppError } from './errors';
import { agentEtag, checkIfMatch } from './etag';
import { findIdempotentResponse, storeIdempotentResponse } from './idempotency';
import { type ModelCatalog, resolveModel } from './models';
import { type CursorPage, cursorCondition, isUuid, pageOf } from './pagination';
import { AGENT_DEFAULTS, type Agent, type CreateAgentInput, type UpdateAgentInput } from './schemas/agents';
import { keepDeletedAgentTokens } from './usage';

export type AgentRow = typeof agents.$inferSelect;

export function toAgent(row: AgentRow): Agent {
  return {
    id: row.id,
    name: row.name,
    systemPrompt: row.systemPrompt,
    model: row.model,
    maxTokens: row.maxTokens,
    temperature: row.temperature,
    telegramAllowFrom: row.telegramAllowFrom,
    telegramGroupPolicy: row.telegramGroupPolicy,
    telegramDmPolicy: row.telegramDmPolicy,
    botUsername: row.botUsername,
    dailyTokenBudget: row.dailyTokenBudget,
    status: row.status,
    statusSince: row.statusSince.toISOString(),
    lastError: row.lastError,
    telegramBotUsername: row.telegramBotUsername,
    lastMessageAt: row.lastMessageAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** 404 for a missing agent and for another customer's agent alike: nothing reveals that it exists. */
export const agentNotFound = (id: string) => new AppError('agent_not_found', `No agent with id ${id}`);

/** The customer's own agent, or undefined (also for a malformed id or another tenant's agent). */
export async function findOwnAgent(
  db: Queryable,
  customerId: string,
  agentId: string,
  options: { forUpdate?: boolean } = {},
): Promise<AgentRow | undefined> {
  if (!isUuid(agentId)) return undefined;
  const query = db
    .select()
    .from(agents)
    .where(and(eq(agents.id, agentId), eq(agents.customerId, customerId)));
  const [row] = options.forUpdate ? await query.for('update') : await query;
  return row;
}

export async function getOwnAgent(db: Queryable, customerId: string, agentId: string): Promise<AgentRow> {
  const row = await findOwnAgent(db, customerId, agentId);
  if (!row) throw agentNotFound(agentId);
  return row;
}

function dedupe(values: string[]): string[] {
  return [...new Set(values)];
}

/**
 * Creates an agent. With an `idempotencyKey`, a create that succeeded under the key in the last 24
 * hours is answered again (`replayed`) instead of creating a second agent: a retry after a timeout or
 * a lost answer is safe.
 */
export async function createAgent(
  db: Database,
  context: RequestContext,
  customerId: string,
  models: ModelCatalog,
  input: CreateAgentInput,
  options: { idempotencyKey?: string | undefined } = {},
): Promise<{ agent: Agent; replayed: boolean }> {
  const model = resolveModel(models, input.model);
  const idempotent = options.idempotencyKey
    ? { customerId, key: options.idempotencyKey, operation: 'agent.create', input }
    : undefined;
  const outcome = await db.transaction(async (tx) => {
    // The customer row lock serialises concurrent creates, so the count below cannot go stale, and a
    // retry sent while the first request is still at work waits for it and answers what it did.
    const customer = await findCustomerRow(tx, customerId, { forUpdate: true });
    if (!customer) throw new AppError('unauthorized', 'Invalid API key');
    const replay = idempotent && (await findIdempotentResponse<Agent>(tx, idempotent));
    if (replay) return { kind: 'replayed', agent: replay } as const;
    const [existing] = await tx.select({ n: count() }).from(agents).where(eq(agents.customerId, customerId));
    if ((existing?.n ?? 0) >= customer.maxAgents) {
      return { kind: 'limit', limit: customer.maxAgents } as const;
    }
    const [row] = await tx
      .insert(agents)
      .values({
        customerId,
        name: input.name,
        systemPrompt: input.systemPrompt ?? AGENT_DEFAULTS.systemPrompt,
        model,
        maxTokens: input.maxTokens ?? AGENT_DEFAULTS.maxTokens,
        temperature: input.temperature ?? AGENT_DEFAULTS.temperature,
        telegramAllowFrom: dedupe(input.telegramAllowFrom ?? AGENT_DEFAULTS.telegramAllowFrom),
        telegramGroupPolicy: input.telegramGroupPolicy ?? AGENT_DEFAULTS.telegramGroupPolicy,
        telegramDmPolicy: input.telegramDmPolicy ?? AGENT_DEFAULTS.telegramDmPolicy,
        botUsername: input.botUsername ?? null,
        dailyTokenBudget: input.dailyTokenBudget ?? null,
      })
      .returning();
    if (!row) throw new Error('insert returned no row');
    await recordAudit(tx, context, {
      action: 'agent.create',
      targetType: 'agent',
      targetId: row.id,
      details: { name: row.name, model: row.model },
    });
    const agent = toAgent(row);
    if (idempotent) await storeIdempotentResponse(tx, idempotent, agent);
    return { kind: 'created', agent } as const;
  });
  if (outcome.kind !== 'limit') return { agent: outcome.agent, replayed: outcome.kind === 'replayed' };
  await recordAudit(db, context, {
    action: 'agent.create',
    targetType: 'agent',
    outcome: 'failure',
    details: { code: 'max_agents_reached', maxAgents: outcome.limit },
  });
  throw new AppError(
    'max_agents_reached',
    `This plan allows ${outcome.limit} agent(s); delete one or upgrade`,
    {
      details: { maxAgents: outcome.limit },
    },
  );
}

export async function listAgents(
  db: Queryable,
  customerId: string,
  filter: { status?: AgentRow['status'] | undefined; limit: number; cursor?: string | undefined },
): Promise<CursorPage<Agent>> {
  const conditions: SQL[] = [eq(agents.customerId, customerId)];
  if (filter.status) conditions.push(eq(agents.status, filter.status));
  const after = cursorCondition(agents, filter.cursor);
  if (after) conditions.push(after);
  const rows = await db
    .select()
    .from(agents)
    .where(and(...conditions))
    .orderBy(desc(agents.createdAt), desc(agents.id))
    .limit(filter.limit + 1);
  return pageOf(rows, filter.limit, toAgent);
}

export async function updateAgent(
  db: Database,
  context: RequestContext,
  customerId: string,
  agentId: string,
  models: ModelCatalog,
  input: UpdateAgentInput,
  options: { ifMatch?: string | undefined } = {},
): Promise<Agent> {
  const { model, telegramAllowFrom, ...rest } = input;
  const changes: Partial<typeof agents.$inferInsert> = { ...rest };
  if (model !== undefined) changes.model = resolveModel(models, model);
  if (telegramAllowFrom !== undefined) changes.telegramAllowFrom = dedupe(telegramAllowFrom);
  return db.transaction(async (tx) => {
    const current = await findOwnAgent(tx, customerId, agentId, { forUpdate: true });
    if (!current) throw agentNotFound(agentId);
    // Checked under the row lock: no change can land between the comparison and the write.
    checkAgentIfMatch(current, options.ifMatch);
    const changed = changedFields(current, changes);
    const [row] = Object.keys(changed).length
      ? await tx.update(agents).set(changed).where(eq(agents.id, agentId)).returning()
      : [current];
    if (!row) throw agentNotFound(agentId);
    await recordAudit(tx, context, {
      action: 'agent.update',
      targetType: 'agent',
      targetId: agentId,
      details: { fields: Object.keys(input) },
    });
    return toAgent(row);
  });
}

/** Throws 412 unless `ifMatch` (when sent) matches the agent's settings as stored. */
export function checkAgentIfMatch(agent: AgentRow, ifMatch: string | undefined): void {
  checkIfMatch(ifMatch, agentEtag(toAgent(agent)));
}

export async function deleteAgent(
  db: Database,
  context: RequestContext,
  customerId: string,
  agentId: string,
  options: { ifMatch?: string | undefined } = {},
) {
  await db.transaction(async (tx) => {
    const current = await findOwnAgent(tx, customerId, agentId, { forUpdate: true });
    if (!current) throw agentNotFound(agentId);
    // Under the row lock, as for a PATCH: a client deleting what it read must not delete what changed since.
    checkAgentIfMatch(current, options.ifMatch);
    await keepDeletedAgentTokens(tx, current, new Date());
    await tx.delete(agents).where(eq(agents.id, agentId));
    await recordAudit(tx, context, {
      action: 'agent.delete',
      targetType: 'agent',
      targetId: agentId,
      details: { name: current.name, status: current.status },
    });
  });
}
