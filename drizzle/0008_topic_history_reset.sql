ALTER TABLE "telegram_chats" ADD COLUMN "topic_history_reset_at" jsonb;--> statement-breakpoint
-- Before topics kept their own /reset, a /reset in any topic wrote history_reset_at: it stays every
-- topic's floor ("*"), so a conversation forgotten before this migration stays forgotten.
UPDATE "telegram_chats" SET "topic_history_reset_at" = jsonb_build_object('*', "history_reset_at")
WHERE "history_reset_at" IS NOT NULL;
