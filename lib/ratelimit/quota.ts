import { and, eq, gte, isNotNull, isNull, ne, or, sql } from 'drizzle-orm';
import type { Database, Queryable } from '../db/client';
import { preparedQuery } from '../db/prepared';
import { customers, telegramChats, telegramMessages } from '../db/schema';
import type { RateLimiter } from './limiter';
import { limitsFor } from './plans';

/** YYYY-MM-DD of `now` in UTC: the day quotas, budgets and their once-a-day notices count by. */
export function utcDay(now: Date): string {
  return now.toISOString().slice(0, 10);
}

export function startOfUtcDay(now: Date): Date {
  return new Date(`${utcDay(now)}T00:00:00.000Z`);
}

export const QUOTA_NOTICE =
  'This assistant has reached its message limit for today. Please try again tomorrow (the limit resets at 00:00 UTC).';
export const TOKEN_BUDGET_NOTICE =
  "This assistant has used its daily budget and can't answer more messages today. Please try again tomorrow.";

const NOTICE_COLUMNS = {
  quota: { day: 'quotaNoticeDay', messageId: 'quotaNoticeMessageId' },
  budget: { day: 'budgetNoticeDay', messageId: 'budgetNoticeMessageId' },
} as const;

/**
 * Marks that today's notice went to this chat; true only for the first message of the day, so the
 * end user gets one notice per chat per day, however many messages arrive, even concurrently. The
 * message that claimed it gets true again: its decision, run again, must not lose the notice.
 */
async function claimDailyNotice(
  db: Queryable,
  kind: keyof typeof NOTICE_COLUMNS,
  notice: { agentId: string; chatId: number; messageId: string; day: string },
): Promise<boolean> {
  const columns = NOTICE_COLUMNS[kind];
  const day = telegramChats[columns.day];
  const messageId = telegramChats[columns.messageId];
  await db
    .insert(telegramChats)
    .values({ agentId: notice.agentId, chatId: notice.chatId, type: 'unknown' })
    .onConflictDoNothing();
  const claimed = await db
    .update(telegramChats)
    .set({ [columns.day]: notice.day, [columns.messageId]: notice.messageId })
    .where(
      and(
        eq(telegramChats.agentId, notice.agentId),
        eq(telegramChats.chatId, notice.chatId),
        or(isNull(day), ne(day, notice.day), eq(messageId, notice.messageId)),
      ),
    )
    .returning({ id: telegramChats.id });
  return claimed.length > 0;
}

export type CustomerLimits = Pick<
  typeof customers.$inferSelect,
  'plan' | 'apiRequestsPerHour' | 'messagesPerDay'
>;

export type QuotaDecision =
  | { allowed: true; remaining: number; limit: number }
  | { allowed: false; limit: number; notify: boolean };

/**
 * Counts one Telegram message against the customer's messages-per-day quota when it is accepted for
 * a reply. Over quota: `notify` is true once per chat per UTC day (send QUOTA_NOTICE then, and the
 * customer's `agent.error` with code `quota_exceeded`). Fails open when Redis is down: a Redis
 * outage never costs an end user their answer.
 *
 * A message is counted once: it is marked before the count, so a decision run again (a crash lost
 * its result, an admin replays a failed answer) lets it through without counting it again. A crash
 * between the mark and the count leaves it uncounted, the side a customer is not charged on.
 */
export async function checkMessageQuota(
  db: Database,
  limiter: RateLimiter,
  input: {
    customerId: string;
    agentId: string;
    chatId: number;
    /** The stored inbound message being counted. */
    messageId: string;
    now: Date;
    /** The customer's plan and overrides when the caller has just read them (saves a query). */
    customer?: CustomerLimits | undefined;
  },
): Promise<QuotaDecision> {
  const [customer] = input.customer
    ? [input.customer]
    : await db
        .select({
          plan: customers.plan,
          apiRequestsPerHour: customers.apiRequestsPerHour,
          messagesPerDay: customers.messagesPerDay,
        })
        .from(customers)
        .where(eq(customers.id, input.customerId));
  if (!customer) return { allowed: false, limit: 0, notify: false };
  const { messagesPerDay } = limitsFor(customer);
  const identifier = `customer:${input.customerId}`;
  const [marked] = await markCounted(db).execute({
    messageId: input.messageId,
    now: input.now.toISOString(),
  });
  if (!marked) {
    const { remaining } = await limiter.usage(identifier, messagesPerDay);
    return { allowed: true, remaining, limit: messagesPerDay };
  }
  const result = await limiter.limit(identifier, messagesPerDay);
  if (result.success) return { allowed: true, remaining: result.remaining, limit: messagesPerDay };
  // Refused, it was not counted (the limiter hands a refusal back): a later decision counts it anew.
  await db
    .update(telegramMessages)
    .set({ quotaCountedAt: null })
    .where(eq(telegramMessages.id, input.messageId));
  const notify = await claimDailyNotice(db, 'quota', {
    agentId: input.agentId,
    chatId: input.chatId,
    messageId: input.messageId,
    day: utcDay(input.now),
  });
  return { allowed: false, limit: messagesPerDay, notify };
}

/** Marks a message counted against the quota; no row when it already was. */
const markCounted = preparedQuery((db) =>
  db
    .update(telegramMessages)
    .set({ quotaCountedAt: sql`${sql.placeholder('now')}::timestamptz` })
    .where(
      and(eq(telegramMessages.id, sql.placeholder('messageId')), isNull(telegramMessages.quotaCountedAt)),
    )
    .returning({ id: telegramMessages.id })
    .prepare('quota_mark_counted'),
);

export type BudgetDecision =
  | { allowed: true; used: number; budget: number | null }
  | { allowed: false; used: number; budget: number; notify: boolean };

/**
 * The messages that used Claude tokens (answers). The same condition as the partial index
 * `telegram_messages_token_usage_idx`, so a read that states it walks only those rows of an agent.
 */
export const usedTokens = or(
  isNotNull(telegramMessages.inputTokens),
  isNotNull(telegramMessages.outputTokens),
);

/**
 * The tokens an answer used, by kind. Anthropic's `input_tokens` leaves out the system prompt's tokens
 * read from or written to the prompt cache, so those are counted on their own: with a long cached prompt
 * they are most of what Claude read.
 */
export const TOKEN_COLUMNS = {
  inputTokens: telegramMessages.inputTokens,
  outputTokens: telegramMessages.outputTokens,
  cacheReadTokens: telegramMessages.cacheReadTokens,
  cacheCreationTokens: telegramMessages.cacheCreationTokens,
} as const;
export type TokenKind = keyof typeof TOKEN_COLUMNS;
export const TOKEN_KINDS = Object.keys(TOKEN_COLUMNS) as TokenKind[];

/** The statement of `tokensUsedToday` (its plan is tested: test/ratelimit/token-usage-plan.test.ts). */
export function tokensUsedTodayQuery(db: Queryable, agentId: string, now: Date) {
  const perAnswer = sql.join(
    TOKEN_KINDS.map((kind) => sql`coalesce(${TOKEN_COLUMNS[kind]}, 0)`),
    sql` + `,
  );
  return db
    .select({ used: sql<string>`coalesce(sum(${perAnswer}), 0)` })
    .from(telegramMessages)
    .where(
      and(
        eq(telegramMessages.agentId, agentId),
        gte(telegramMessages.createdAt, startOfUtcDay(now)),
        usedTokens,
      ),
    );
}

/** Claude tokens the agent used today (UTC), every kind (`TOKEN_COLUMNS`), from the stored messages. */
export async function tokensUsedToday(db: Queryable, agentId: string, now: Date): Promise<number> {
  const [row] = await tokensUsedTodayQuery(db, agentId, now);
  return Number(row?.used ?? 0);
}

/**
 * The agent's daily token budget: once today's tokens reach it (input, output and prompt-cache reads
 * and writes alike), no more Claude calls today. `notify` is true once per chat per day (send TOKEN_BUDGET_NOTICE, and `agent.error` with
 * code `token_budget_exceeded`).
 */
export async function checkTokenBudget(
  db: Database,
  input: { agentId: string; chatId: number; messageId: string; dailyTokenBudget: number | null; now: Date },
): Promise<BudgetDecision> {
  if (input.dailyTokenBudget === null) return { allowed: true, used: 0, budget: null };
  const used = await tokensUsedToday(db, input.agentId, input.now);
  if (used < input.dailyTokenBudget) return { allowed: true, used, budget: input.dailyTokenBudget };
  const notify = await claimDailyNotice(db, 'budget', {
    agentId: input.agentId,
    chatId: input.chatId,
    messageId: input.messageId,
    day: utcDay(input.now),
  });
  return { allowed: false, used, budget: input.dailyTokenBudget, notify };
}
