import { and, eq, gte, sql } from 'drizzle-orm';
import type { AnyPgColumn } from 'drizzle-orm/pg-core';
import type { Queryable } from './db/client';
import { agents, customers, telegramMessages } from './db/schema';
import { AppError } from './errors';
import { isUuid } from './pagination';
import type { RateLimiter } from './ratelimit/limiter';
import { limitsFor } from './ratelimit/plans';
import { startOfUtcDay, usedTokens } from './ratelimit/quota';

export interface AgentTokenUsage {
  agentId: string;
  name: string;
  today: { inputTokens: number; outputTokens: number };
  month: { inputTokens: number; outputTokens: number };
}

export interface Usage {
  plan: 'free' | 'pro' | 'enterprise';
  limits: { apiRequestsPerHour: number; messagesPerDay: number };
  apiRequests: { used: number; remaining: number; resetAt: string };
  messages: { used: number; remaining: number; resetAt: string };
  tokens: {
    today: { inputTokens: number; outputTokens: number };
    month: { inputTokens: number; outputTokens: number };
  };
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
  const identifier = `customer:${customerId}`;
  const [api, messages] = await Promise.all([
    limiters.api.usage(identifier, limits.apiRequestsPerHour),
    limiters.messages.usage(identifier, limits.messagesPerDay),
  ]);
  const rows = await tokensByAgentQuery(db, customerId, now);
  const perAgent = rows.map((row) => ({
    agentId: row.agentId,
    name: row.name,
    today: { inputTokens: Number(row.dayIn), outputTokens: Number(row.dayOut) },
    month: { inputTokens: Number(row.monthIn), outputTokens: Number(row.monthOut) },
  }));
  const total = (pick: (agent: AgentTokenUsage) => number) =>
    perAgent.reduce((sum, agent) => sum + pick(agent), 0);
  return {
    plan: customer.plan,
    limits,
    apiRequests: { used: api.used, remaining: api.remaining, resetAt: new Date(api.reset).toISOString() },
    messages: {
      used: messages.used,
      remaining: messages.remaining,
      resetAt: new Date(messages.reset).toISOString(),
    },
    tokens: {
      today: {
        inputTokens: total((a) => a.today.inputTokens),
        outputTokens: total((a) => a.today.outputTokens),
      },
      month: {
        inputTokens: total((a) => a.month.inputTokens),
        outputTokens: total((a) => a.month.outputTokens),
      },
    },
    agents: perAgent,
  };
}

/** Each agent of the customer with its Claude tokens today and this month (UTC), by name. */
export function tokensByAgentQuery(db: Queryable, customerId: string, now: Date) {
  const dayStart = startOfUtcDay(now);
  const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const sumIf = (column: AnyPgColumn, from: Date) =>
    sql<string>`coalesce(sum(${column}) filter (where ${telegramMessages.createdAt} >= ${from.toISOString()}::timestamptz), 0)`;
  return db
    .select({
      agentId: agents.id,
      name: agents.name,
      dayIn: sumIf(telegramMessages.inputTokens, dayStart),
      dayOut: sumIf(telegramMessages.outputTokens, dayStart),
      monthIn: sumIf(telegramMessages.inputTokens, monthStart),
      monthOut: sumIf(telegramMessages.outputTokens, monthStart),
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
