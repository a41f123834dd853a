import { and, eq, gte, type SQL, sql } from 'drizzle-orm';
import type { Queryable } from './db/client';
import { agents, customers, deletedAgentTokenUsage, telegramMessages } from './db/schema';
import { AppError } from './errors';
import { isUuid } from './pagination';
import type { RateLimiter } from './ratelimit/limiter';
import { limitsFor } from './ratelimit/plans';
import {
  startOfUtcDay,
  TOKEN_COLUMNS,
  TOKEN_KINDS,
  type TokenKind,
  usedTokens,
  utcDay,
} from './ratelimit/quota';

export type TokenCounts = Record<TokenKind, number>;

export interface AgentTokenUsage {
  agentId: string;
  name: string;
  /** Set for an agent deleted this month: its tokens still count. */
  deletedAt: string | null;
  today: TokenCounts;
  month: TokenCounts;
}

/** A limiter's count; `used` and `remaining` are null when Redis did not answer (nothing to report). */
export interface UsageCounter {
  used: number | null;
  remaining: number | null;
  resetAt: string;
}

export interface Usage {
  plan: 'free' | 'pro' | 'enterprise';
  limits: { apiRequestsPerHour: number; messagesPerDay: number };
  /** `failing_open` while Redis does not answer: the limits pass everything, and the counts are unknown. */
  rateLimits: 'enforced' | 'failing_open';
  apiRequests: UsageCounter;
  messages: UsageCounter;
  tokens: { today: TokenCounts; month: TokenCounts };
  agents: AgentTokenUsage[];
}

/** Requests this hour and messages today (from the limiters), and Claude tokens by agent (from the messages). */
export async function getUsage(
  db: Queryable,
  limiters: { api: RateLimiter; messages: RateLimiter },
  customerId: string,
  now: Date,
): Promise<Usage> {
  const [customer] = isUuid(customerId)
    ? await db.select().from(customers).where(eq(customers.id, customerId))
    : [];
  if (!customer) throw new AppError('customer_not_found', `No customer with id ${customerId}`);
  const limits = limitsFor(customer);
  const identifier = `customer:${customer.id}`;
  const [api, messages] = await Promise.all([
    limiters.api.usage(identifier, limits.apiRequestsPerHour),
    limiters.messages.usage(identifier, limits.messagesPerDay),
  ]);
  const [rows, deleted] = await Promise.all([
    tokensByAgentQuery(db, customer.id, now),
    deletedAgentTokensQuery(db, customer.id, now),
  ]);
  const usageOf = (row: (typeof rows)[number], deletedAt: Date | null): AgentTokenUsage => ({
    agentId: row.agentId,
    name: row.name,
    deletedAt: deletedAt?.toISOString() ?? null,
    today: countsOf((kind) => Number(row.today[kind])),
    month: countsOf((kind) => Number(row.month[kind])),
  });
  const perAgent = [
    ...rows.map((row) => usageOf(row, null)),
    ...deleted.map((row) => usageOf(row, row.deletedAt)),
  ];
  const total = (period: 'today' | 'month') =>
    countsOf((kind) => perAgent.reduce((sum, agent) => sum + agent[period][kind], 0));
  return {
    plan: customer.plan,
    limits,
    rateLimits: api.failedOpen || messages.failedOpen ? 'failing_open' : 'enforced',
    apiRequests: counterOf(api),
    messages: counterOf(messages),
    tokens: { today: total('today'), month: total('month') },
    agents: perAgent,
  };
}

function counterOf(usage: Awaited<ReturnType<RateLimiter['usage']>>): UsageCounter {
  const resetAt = new Date(usage.reset).toISOString();
  if (usage.failedOpen) return { used: null, remaining: null, resetAt };
  return { used: usage.used, remaining: usage.remaining, resetAt };
}

function countsOf(count: (kind: TokenKind) => number): TokenCounts {
  return Object.fromEntries(TOKEN_KINDS.map((kind) => [kind, count(kind)])) as TokenCounts;
}

/** Each agent of the customer with its Claude tokens today and this month (UTC), by name. */
export function tokensByAgentQuery(db: Queryable, customerId: string, now: Date) {
  const dayStart = startOfUtcDay(now);
  const monthStart = monthStartOf(now);
  const sumsSince = (from: Date) =>
    Object.fromEntries(
      TOKEN_KINDS.map((kind) => [
        kind,
        sql<string>`coalesce(sum(${TOKEN_COLUMNS[kind]}) filter (where ${telegramMessages.createdAt} >= ${from.toISOString()}::timestamptz), 0)`,
      ]),
    ) as Record<TokenKind, SQL<string>>;
  return db
    .select({
      agentId: agents.id,
      name: agents.name,
      today: sumsSince(dayStart),
      month: sumsSince(monthStart),
    })
    .from(agents)
    .leftJoin(
      telegramMessages,
      and(eq(telegramMessages.agentId, agents.id), gte(telegramMessages.createdAt, monthStart), usedTokens),
    )
    .where(eq(agents.customerId, customerId))
    .groupBy(agents.id, agents.name)
    .orderBy(agents.name);
}

const monthStartOf = (now: Date) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));

/** The customer's agents deleted with tokens used this month, by when they went, with today's and the month's. */
function deletedAgentTokensQuery(db: Queryable, customerId: string, now: Date) {
  const monthStart = utcDay(monthStartOf(now));
  const sumsSince = (day: string) =>
    Object.fromEntries(
      TOKEN_KINDS.map((kind) => [
        kind,
        sql<string>`coalesce(sum(${deletedAgentTokenUsage[kind]}) filter (where ${deletedAgentTokenUsage.day} >= ${day}::date), 0)`,
      ]),
    ) as Record<TokenKind, SQL<string>>;
  return db
    .select({
      agentId: deletedAgentTokenUsage.agentId,
      name: deletedAgentTokenUsage.name,
      deletedAt: deletedAgentTokenUsage.deletedAt,
      today: sumsSince(utcDay(now)),
      month: sumsSince(monthStart),
    })
    .from(deletedAgentTokenUsage)
    .where(
      and(eq(deletedAgentTokenUsage.customerId, customerId), gte(deletedAgentTokenUsage.day, monthStart)),
    )
    .groupBy(deletedAgentTokenUsage.agentId, deletedAgentTokenUsage.name, deletedAgentTokenUsage.deletedAt)
    .orderBy(deletedAgentTokenUsage.deletedAt, deletedAgentTokenUsage.agentId);
}

/**
 * Keeps the Claude tokens of an agent about to be deleted, by UTC day, so that the month's usage does
 * not lose them with its messages. In the deleting transaction, before the delete.
 */
export async function keepDeletedAgentTokens(
  db: Queryable,
  agent: { id: string; customerId: string; name: string },
  now: Date,
): Promise<void> {
  const day = sql`(${telegramMessages.createdAt} at time zone 'UTC')::date`;
  const sums = TOKEN_KINDS.map((kind) => sql`coalesce(sum(${TOKEN_COLUMNS[kind]}), 0)`);
  await db.execute(sql`
    insert into ${deletedAgentTokenUsage} (customer_id, agent_id, name, day, input_tokens, output_tokens,
      cache_read_tokens, cache_creation_tokens, deleted_at)
    select ${agent.customerId}::uuid, ${agent.id}::uuid, ${agent.name}::text, ${day}, ${sql.join(sums, sql`, `)},
      ${now.toISOString()}::timestamptz
    from ${telegramMessages}
    where ${telegramMessages.agentId} = ${agent.id}::uuid and ${usedTokens}
    group by ${day}`);
}
