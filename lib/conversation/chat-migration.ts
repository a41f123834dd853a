import { sql } from 'drizzle-orm';
import type { Queryable } from '../db/client';

/**
 * Records that a basic group became a supergroup. Telegram moves the chat to a new id and says so three
 * ways: `migrate_to_chat_id` in a service message of the old chat, `migrate_from_chat_id` in one of the
 * new chat, and in the 400 answering a send to the old id. The new chat's conversation goes on from the
 * old one's: its row names the old chat, whose messages the history reads too, from the later of the
 * two chats' last /reset (read, not copied here, so a /reset handled in the old chat afterwards holds).
 * Idempotent, so each of the three may record it.
 */
export async function recordChatMigration(
  db: Queryable,
  input: { agentId: string; fromChatId: number; toChatId: number },
): Promise<void> {
  const { agentId, fromChatId, toChatId } = input;
  if (fromChatId === toChatId) return;
  await db.execute(sql`
    insert into telegram_chats (agent_id, chat_id, type, title, migrated_from_chat_id)
    select ${agentId}::uuid, ${toChatId}::bigint, 'supergroup', old.title, ${fromChatId}::bigint
    from (select 1) as one
    left join telegram_chats old on old.agent_id = ${agentId}::uuid and old.chat_id = ${fromChatId}::bigint
    on conflict (agent_id, chat_id) do update
      set migrated_from_chat_id = excluded.migrated_from_chat_id, updated_at = now()
      where telegram_chats.migrated_from_chat_id is distinct from excluded.migrated_from_chat_id`);
}
