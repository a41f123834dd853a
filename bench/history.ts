/**
 * The conversation read of one reply (`buildConversation`) in a chat with a long history, with and
 * without a /reset near its end, on the real PostgreSQL (PGlite when none answers): a chat where every
 * message is answered, and a busy group where the bot is addressed in one message of 20 (the others
 * are stored, ignored). Prints:
 *   history db=<postgres|pglite> chat=<answered|busy_group> rows=N reset=<no|yes> reads=N p50=…ms p99=…ms first5_max=…ms turns=N
 * Run: npm run bench:history [rows]
 */
import { sql } from 'drizzle-orm';
import { buildConversation, type ConversationInput, resetConversation } from '../lib/conversation/history';
import { createDatabase, type Database } from '../lib/db/client';
import { migrateDatabase } from '../lib/db/migrate';
import { agents, customers, telegramMessages } from '../lib/db/schema';
import { percentile } from './support/percentile';
import { scratchPostgres } from './support/scratch-postgres';

const rows = Number(process.argv[2] ?? 120_000);
const READS = 50;
const CHATS = [
  { name: 'answered', chatId: 42, addressedEvery: 1 },
  { name: 'busy_group', chatId: -100_43, addressedEvery: 20 },
] as const;
type Ids = { agentId: string; customerId: string };

async function createAgent(db: Database): Promise<Ids> {
  const [customer] = await db.insert(customers).values({ name: 'Bench' }).returning();
  const [agent] = await db
    .insert(agents)
    .values({ customerId: customer!.id, name: 'Bench', model: 'claude-sonnet-4-5' })
    .returning();
  return { agentId: agent!.id, customerId: customer!.id };
}

/**
 * About `rows` messages in `chatId` over the last day, up to two minutes ago (every chat as active as
 * the others): user messages, one in `addressedEvery` answered (the answer replying to it), the
 * others ignored.
 */
async function seed(db: Database, ids: Ids, chatId: number, addressedEvery: number): Promise<void> {
  const inbound = Math.ceil((rows * addressedEvery) / (addressedEvery + 1));
  await db.execute(sql`insert into telegram_messages
      (agent_id, customer_id, chat_id, direction, text, status, update_id, telegram_message_id, created_at, "update")
    select ${ids.agentId}::uuid, ${ids.customerId}::uuid, ${chatId}, 'inbound', 'question ' || g,
      (case when g % ${addressedEvery} = 0 then 'answered' else 'ignored' end)::message_status,
      ${chatId}::bigint * 1000000 + g, 2 * g, now() - interval '2 minutes' - (${inbound} - g) * (interval '1 day' / ${inbound}),
      jsonb_build_object('update_id', g, 'message', jsonb_build_object('text', 'question ' || g,
        'from', jsonb_build_object('id', 7, 'first_name', 'Ann')))
    from generate_series(1, ${inbound}) g`);
  await db.execute(sql`insert into telegram_messages
      (agent_id, customer_id, chat_id, direction, text, status, telegram_message_id, reply_to_id, created_at)
    select agent_id, customer_id, chat_id, 'outbound', 'answer to ' || text, 'sent', telegram_message_id + 1, id,
      created_at + interval '20 ms'
    from telegram_messages
    where agent_id = ${ids.agentId}::uuid and chat_id = ${chatId} and direction = 'inbound' and status = 'answered'`);
}

/** A new message at the chat's end, and the conversation input that answers it. */
async function currentMessage(db: Database, ids: Ids, chatId: number) {
  const [current] = await db
    .insert(telegramMessages)
    .values({
      ...ids,
      chatId,
      direction: 'inbound',
      text: 'and now?',
      status: 'processing',
      updateId: chatId * 1_000_000 - 1,
      telegramMessageId: 2 * rows + 10,
      update: { update_id: rows + 1, message: { text: 'and now?', from: { id: 7, first_name: 'Ann' } } },
    })
    .returning({ id: telegramMessages.id });
  return {
    agentId: ids.agentId,
    chatId,
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
  const ids = await createAgent(db);
  for (const chat of CHATS) await seed(db, ids, chat.chatId, chat.addressedEvery);
  await db.execute(sql`analyze telegram_messages`);
  for (const chat of CHATS) {
    const input = await currentMessage(db, ids, chat.chatId);
    const label = `history db=${scratch ? 'postgres' : 'pglite'} chat=${chat.name} rows=${rows}`;
    console.log(`${label} reset=no ${await measure(db, input)}`);
    const resetAt = new Date(Date.now() - 60_000);
    await resetConversation(db, { agentId: ids.agentId, chatId: chat.chatId, now: resetAt });
    console.log(`${label} reset=yes ${await measure(db, input)}`);
  }
} finally {
  await database.close();
  await scratch?.drop();
}
