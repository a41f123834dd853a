import { and, eq, gte, type SQL, sql } from 'drizzle-orm';
import type { Queryable } from './db/client';
import { agents, customers, telegramMessages } from './db/schema';
import { AppError } from './errors';
import { isUuid } from './pagination';
import type { RateLimiter } from './ratelimit/limiter';
import { limitsFor } from './ratelimit/plans';
import { startOfUtcDay, TOKEN_COLUMNS, TOKEN_KINDS, type TokenKind, usedTokens } from './ratelimit/quota';

export type TokenCounts = Record<TokenKind, number>;

export interface AgentTokenUsage {
  agentId: string;
  name: string;
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
  const rows = await tokensByAgentQuery(db, customer.id, now);
  const perAgent = rows.map((row) => ({
    agentId: row.agentId,
    name: row.name,
    today: countsOf((kind) => Number(row.today[kind])),
    month: countsOf((kind) => Number(row.month[kind])),
  }));
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
  const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
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
