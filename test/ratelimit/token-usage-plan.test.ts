import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../lib/db/client';
import { selectRows } from '../../lib/db/client';
import { agents } from '../../lib/db/schema';
import { startOfUtcDay, TOKEN_KINDS, tokensUsedToday, tokensUsedTodayQuery } from '../../lib/ratelimit/quota';
import { tokensByAgentQuery } from '../../lib/usage';
import { createAgent } from '../policy/fixtures';
import { createTestDatabase, databaseTargets, type TestDatabase } from '../support/db';
import { explainPlan, planScans } from '../support/plans';

const NOW = new Date('2026-03-15T12:00:00.000Z');
const MONTH_START = new Date('2026-03-01T00:00:00.000Z');

/**
 * Today's token budget is checked before every Claude call of an agent with a budget, and the usage
 * endpoint sums the month. Both read the answers that used tokens, by agent and time, on a partial
 * index; on the history index they walked every message the agent ever stored, in every chat.
 */
describe.each(databaseTargets())('token usage reads on %s, with two months of messages', (target) => {
  let database: TestDatabase;
  let db: Database;
  let agentId: string;
  let customerId: string;

  /** `count` messages of the agent, one every 15 minutes back from NOW over 40 chats; one in three an answer with tokens. */
  async function seed(agent: string, customer: string, count: number) {
    await db.execute(sql`
      insert into telegram_messages (agent_id, customer_id, chat_id, direction, text, input_tokens, output_tokens,
        cache_read_tokens, cache_creation_tokens, created_at)
      select ${agent}::uuid, ${customer}::uuid, g % 40,
        (case when g % 3 = 0 then 'outbound' else 'inbound' end)::message_direction,
        'm' || g,
        case when g % 3 = 0 and g % 9 <> 0 then g % 100 + 1 end,
        case when g % 3 = 0 then g % 7 end,
        case when g % 6 = 0 then 900 + g % 11 end,
        case when g % 3 = 0 and g % 6 <> 0 then g % 13 end,
        ${NOW.toISOString()}::timestamptz - g * interval '15 minutes'
      from generate_series(1, ${count}::int) g`);
  }

  beforeAll(async () => {
    database = await createTestDatabase(target);
    db = database.handle.db;
    const agent = await createAgent(db);
    agentId = agent.id;
    customerId = agent.customerId;
    const [other] = await db
      .insert(agents)
      .values({ customerId, name: 'Bea', model: 'claude-sonnet-4-5' })
      .returning();
    await seed(agentId, customerId, 6000);
    await seed(other!.id, customerId, 600);
    await db.execute(sql`analyze telegram_messages`);
  });
  afterAll(async () => {
    await database?.destroy();
  });

  const COLUMNS = {
    inputTokens: 'input_tokens',
    outputTokens: 'output_tokens',
    cacheReadTokens: 'cache_read_tokens',
    cacheCreationTokens: 'cache_creation_tokens',
  } as const;

  /** Tokens of the agent's messages since `from` (one kind, or all four), summed over every row. */
  async function summed(agent: string, from: Date, kind?: keyof typeof COLUMNS) {
    const value = sql.join(
      (kind ? [COLUMNS[kind]] : Object.values(COLUMNS)).map((c) => sql`coalesce(${sql.identifier(c)}, 0)`),
      sql` + `,
    );
    const [row] = await selectRows<{ n: string | number }>(
      db,
      sql`select coalesce(sum(${value}), 0) as n from telegram_messages
          where agent_id = ${agent}::uuid and created_at >= ${from.toISOString()}::timestamptz`,
    );
    return Number(row?.n);
  }

  function messageReads(plan: Parameters<typeof planScans>[0]) {
    return planScans(plan)
      .filter((scan) => scan.relation === 'telegram_messages')
      .map((scan) => ({ index: scan.index, byTime: (scan.indexCond ?? '').includes('created_at') }));
  }

  it("today's tokens of an agent: every answer's, read from the token usage index by agent and time", async () => {
    expect(await tokensUsedToday(db, agentId, NOW)).toBe(await summed(agentId, startOfUtcDay(NOW)));
    expect(await tokensUsedToday(db, agentId, NOW)).toBeGreaterThan(0);
    const plan = await explainPlan(db, tokensUsedTodayQuery(db, agentId, NOW).getSQL());
    expect(messageReads(plan)).toEqual([{ index: 'telegram_messages_token_usage_idx', byTime: true }]);
  });

  it("the month's and today's tokens by agent: every answer's, read the same way", async () => {
    const rows = await tokensByAgentQuery(db, customerId, NOW);
    expect(rows.map((row) => row.name)).toEqual(['Ada', 'Bea']);
    for (const row of rows) {
      for (const kind of TOKEN_KINDS) {
        expect({
          name: row.name,
          kind,
          today: Number(row.today[kind]),
          month: Number(row.month[kind]),
        }).toEqual({
          name: row.name,
          kind,
          today: await summed(row.agentId, startOfUtcDay(NOW), kind),
          month: await summed(row.agentId, MONTH_START, kind),
        });
      }
    }
    const plan = await explainPlan(db, tokensByAgentQuery(db, customerId, NOW).getSQL());
    expect(messageReads(plan)).toEqual([{ index: 'telegram_messages_token_usage_idx', byTime: true }]);
  });
});
