/**
 * The conversation read of one reply (`buildConversation`) in a chat with a long history, with and
 * without a /reset near its end, on the real PostgreSQL (PGlite when none answers). Prints:
 *   history db=<postgres|pglite> rows=N reset=<no|yes> reads=N p50=…ms p99=…ms first5_max=…ms turns=N
 * Run: npm run bench:history [rows]
 */
import { sql } from 'drizzle-orm';
import { buildConversation, type ConversationInput, resetConversation } from '../lib/conversation/history';
import { createDatabase, type Database } from '../lib/db/client';
import { migrateDatabase } from '../lib/db/migrate';
import { agents, customers, telegramMessages } from '../lib/db/schema';
import { scratchPostgres } from './support/scratch-postgres';

const rows = Number(process.argv[2] ?? 120_000);
const READS = 50;
const CHAT_ID = 42;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** `rows` messages over the last day, questions and answers in turn, each answer replying to its question. */
async function seed(db: Database): Promise<{ agentId: string; customerId: string }> {
  const [customer] = await db.insert(customers).values({ name: 'Bench' }).returning();
  const [agent] = await db
    .insert(agents)
    .values({ customerId: customer!.id, name: 'Bench', model: 'claude-sonnet-4-5' })
    .returning();
  const ids = { agentId: agent!.id, customerId: customer!.id };
  const pairs = Math.ceil(rows / 2);
  await db.execute(sql`insert into telegram_messages
      (agent_id, customer_id, chat_id, direction, text, status, update_id, telegram_message_id, created_at, "update")
    select ${ids.agentId}::uuid, ${ids.customerId}::uuid, ${CHAT_ID}, 'inbound', 'question ' || g, 'answered', g, 2 * g,
      now() - interval '1 day' + g * interval '500 ms',
      jsonb_build_object('update_id', g, 'message', jsonb_build_object('text', 'question ' || g,
        'from', jsonb_build_object('id', 7, 'first_name', 'Ann')))
    from generate_series(1, ${pairs}) g`);
  await db.execute(sql`insert into telegram_messages
      (agent_id, customer_id, chat_id, direction, text, status, telegram_message_id, reply_to_id, created_at)
    select agent_id, customer_id, chat_id, 'outbound', 'answer to ' || text, 'sent', telegram_message_id + 1, id,
      created_at + interval '200 ms'
    from telegram_messages where agent_id = ${ids.agentId}::uuid and direction = 'inbound'`);
  await db.execute(sql`analyze telegram_messages`);
  return ids;
}

/** A new message at the chat's end, and the conversation input that answers it. */
async function currentMessage(db: Database, ids: { agentId: string; customerId: string }) {
  const [current] = await db
    .insert(telegramMessages)
    .values({
      ...ids,
      chatId: CHAT_ID,
      direction: 'inbound',
      text: 'and now?',
      status: 'processing',
      updateId: rows + 1,
      telegramMessageId: 2 * rows + 10,
      update: { update_id: rows + 1, message: { text: 'and now?', from: { id: 7, first_name: 'Ann' } } },
    })
    .returning({ id: telegramMessages.id });
  return {
    agentId: ids.agentId,
    chatId: CHAT_ID,
    currentMessageId: current!.id,
    model: 'claude-sonnet-4-5',
    maxTokens: 1024,
    systemPrompt: 'You are a helpful assistant.',
  };
}

/** `reads=… p50=… p99=… first5_max=… turns=…` of READS conversation reads after 5 first ones. */
async function measure(db: Database, input: ConversationInput): Promise<string> {
  const times: number[] = [];
  let turns = 0;
  // The first reads plan the statement afresh each time (PostgreSQL's custom plans), later ones reuse a plan.
  const first: number[] = [];
  for (let i = 0; i < READS + 5; i++) {
    const started = performance.now();
    turns = (await buildConversation(db, input)).messages.length;
    (i < 5 ? first : times).push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const ms = (value: number) => `${value.toFixed(1)}ms`;
  return `reads=${READS} p50=${ms(percentile(times, 50))} p99=${ms(percentile(times, 99))} first5_max=${ms(Math.max(...first))} turns=${turns}`;
}

const scratch = await scratchPostgres();
const database = await createDatabase(
  scratch ? { url: scratch.url, poolSize: 2 } : { pgliteDir: 'memory://' },
);
try {
  await migrateDatabase(database);
  const { db } = database;
  const ids = await seed(db);
  const input = await currentMessage(db, ids);
  const label = `history db=${scratch ? 'postgres' : 'pglite'} rows=${rows}`;
  console.log(`${label} reset=no ${await measure(db, input)}`);
  await resetConversation(db, { agentId: ids.agentId, chatId: CHAT_ID, now: new Date(Date.now() - 60_000) });
  console.log(`${label} reset=yes ${await measure(db, input)}`);
} finally {
  await database.close();
  await scratch?.drop();
}
