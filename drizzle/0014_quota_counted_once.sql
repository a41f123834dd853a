ALTER TABLE "telegram_chats" ADD COLUMN "quota_notice_message_id" uuid;--> statement-breakpoint
ALTER TABLE "telegram_chats" ADD COLUMN "budget_notice_message_id" uuid;--> statement-breakpoint
ALTER TABLE "telegram_messages" ADD COLUMN "quota_counted_at" timestamp with time zone;