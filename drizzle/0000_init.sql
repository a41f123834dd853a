CREATE TYPE "public"."audit_actor_type" AS ENUM('admin', 'customer', 'system');--> statement-breakpoint
CREATE TYPE "public"."agent_status" AS ENUM('stopped', 'starting', 'running', 'stopping', 'error');--> statement-breakpoint
CREATE TYPE "public"."audit_outcome" AS ENUM('success', 'failure');--> statement-breakpoint
CREATE TYPE "public"."credential_kind" AS ENUM('telegram', 'claude', 'telegram_webhook');--> statement-breakpoint
CREATE TYPE "public"."customer_status" AS ENUM('active', 'suspended');--> statement-breakpoint
CREATE TYPE "public"."webhook_delivery_status" AS ENUM('pending', 'retrying', 'succeeded', 'failed');--> statement-breakpoint
CREATE TYPE "public"."telegram_dm_policy" AS ENUM('pairing', 'allowlist', 'open', 'disabled');--> statement-breakpoint
CREATE TYPE "public"."telegram_group_policy" AS ENUM('open', 'allowlist', 'disabled');--> statement-breakpoint
CREATE TYPE "public"."message_direction" AS ENUM('inbound', 'outbound');--> statement-breakpoint
CREATE TYPE "public"."message_status" AS ENUM('received', 'processing', 'answered', 'ignored', 'failed', 'sent');--> statement-breakpoint
CREATE TYPE "public"."pairing_status" AS ENUM('pending', 'approved', 'rejected', 'expired');--> statement-breakpoint
CREATE TYPE "public"."plan" AS ENUM('free', 'pro', 'enterprise');--> statement-breakpoint
CREATE TYPE "public"."validation_status" AS ENUM('valid', 'invalid', 'unreachable');--> statement-breakpoint
CREATE TABLE "agents" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"customer_id" uuid NOT NULL,
	"name" text NOT NULL,
	"system_prompt" text DEFAULT '' NOT NULL,
	"model" text NOT NULL,
	"max_tokens" integer DEFAULT 1024 NOT NULL,
	"temperature" double precision DEFAULT 0.7 NOT NULL,
	"telegram_allow_from" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"telegram_group_policy" "telegram_group_policy" DEFAULT 'allowlist' NOT NULL,
	"telegram_dm_policy" "telegram_dm_policy" DEFAULT 'pairing' NOT NULL,
	"bot_username" text,
	"daily_token_budget" integer,
	"status" "agent_status" DEFAULT 'stopped' NOT NULL,
	"status_since" timestamp with time zone DEFAULT now() NOT NULL,
	"last_error" text,
	"last_error_code" text,
	"last_error_at" timestamp with time zone,
	"telegram_bot_id" bigint,
	"telegram_bot_username" text,
	"telegram_delivery" text,
	"last_message_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "api_keys" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"customer_id" uuid NOT NULL,
	"prefix" text NOT NULL,
	"hash" text NOT NULL,
	"last_used_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "audit_log" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"actor_type" "audit_actor_type" NOT NULL,
	"actor_id" text NOT NULL,
	"actor_key_prefix" text,
	"customer_id" uuid,
	"action" text NOT NULL,
	"target_type" text NOT NULL,
	"target_id" text,
	"request_id" text,
	"ip" text,
	"outcome" "audit_outcome" DEFAULT 'success' NOT NULL,
	"details" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "credentials" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"agent_id" uuid NOT NULL,
	"customer_id" uuid NOT NULL,
	"kind" "credential_kind" NOT NULL,
	"ciphertext" text NOT NULL,
	"iv" text NOT NULL,
	"auth_tag" text NOT NULL,
	"key_version" smallint NOT NULL,
	"last4" text NOT NULL,
	"fingerprint" text,
	"validated_at" timestamp with time zone,
	"validation_status" "validation_status",
	"validation_reason" text,
	"validation_details" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "customers" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"email" text,
	"plan" "plan" DEFAULT 'free' NOT NULL,
	"max_agents" integer DEFAULT 1 NOT NULL,
	"status" "customer_status" DEFAULT 'active' NOT NULL,
	"api_requests_per_hour" integer,
	"messages_per_day" integer,
	"webhook_url" text,
	"webhook_secret_ciphertext" text,
	"webhook_secret_iv" text,
	"webhook_secret_auth_tag" text,
	"webhook_secret_key_version" smallint,
	"previous_webhook_secret_ciphertext" text,
	"previous_webhook_secret_iv" text,
	"previous_webhook_secret_auth_tag" text,
	"previous_webhook_secret_key_version" smallint,
	"previous_webhook_secret_expires_at" timestamp with time zone,
	"suspended_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "pairing_requests" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"agent_id" uuid NOT NULL,
	"code" text NOT NULL,
	"telegram_user_id" bigint NOT NULL,
	"username" text,
	"first_name" text,
	"chat_id" bigint NOT NULL,
	"status" "pairing_status" DEFAULT 'pending' NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"decided_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "telegram_chats" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"agent_id" uuid NOT NULL,
	"chat_id" bigint NOT NULL,
	"type" text NOT NULL,
	"title" text,
	"username" text,
	"history_reset_at" timestamp with time zone,
	"quota_notice_day" text,
	"budget_notice_day" text,
	"blocked_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "telegram_messages" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"agent_id" uuid NOT NULL,
	"customer_id" uuid NOT NULL,
	"chat_id" bigint NOT NULL,
	"update_id" bigint,
	"telegram_message_id" bigint,
	"direction" "message_direction" NOT NULL,
	"from_user_id" bigint,
	"from_username" text,
	"text" text,
	"update" jsonb,
	"status" "message_status" DEFAULT 'received' NOT NULL,
	"event_sent_at" timestamp with time zone,
	"reply_to_id" uuid,
	"input_tokens" integer,
	"output_tokens" integer,
	"cache_read_tokens" integer,
	"model" text,
	"is_command" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "webhook_deliveries" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"customer_id" uuid NOT NULL,
	"event_id" text NOT NULL,
	"event_type" text NOT NULL,
	"agent_id" uuid,
	"payload" jsonb NOT NULL,
	"url" text,
	"status" "webhook_delivery_status" DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_status_code" integer,
	"last_duration_ms" integer,
	"last_response_excerpt" text,
	"last_error" text,
	"next_attempt_at" timestamp with time zone,
	"delivered_at" timestamp with time zone,
	"redelivery_of" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "webhook_delivery_attempts" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"delivery_id" uuid NOT NULL,
	"attempt" integer NOT NULL,
	"status_code" integer,
	"duration_ms" integer NOT NULL,
	"response_excerpt" text,
	"error" text,
	"next_attempt_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "agents" ADD CONSTRAINT "agents_customer_id_customers_id_fk" FOREIGN KEY ("customer_id") REFERENCES "public"."customers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_customer_id_customers_id_fk" FOREIGN KEY ("customer_id") REFERENCES "public"."customers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "credentials" ADD CONSTRAINT "credentials_agent_id_agents_id_fk" FOREIGN KEY ("agent_id") REFERENCES "public"."agents"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "credentials" ADD CONSTRAINT "credentials_customer_id_customers_id_fk" FOREIGN KEY ("customer_id") REFERENCES "public"."customers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pairing_requests" ADD CONSTRAINT "pairing_requests_agent_id_agents_id_fk" FOREIGN KEY ("agent_id") REFERENCES "public"."agents"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "telegram_chats" ADD CONSTRAINT "telegram_chats_agent_id_agents_id_fk" FOREIGN KEY ("agent_id") REFERENCES "public"."agents"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "telegram_messages" ADD CONSTRAINT "telegram_messages_agent_id_agents_id_fk" FOREIGN KEY ("agent_id") REFERENCES "public"."agents"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "telegram_messages" ADD CONSTRAINT "telegram_messages_customer_id_customers_id_fk" FOREIGN KEY ("customer_id") REFERENCES "public"."customers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_customer_id_customers_id_fk" FOREIGN KEY ("customer_id") REFERENCES "public"."customers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_delivery_attempts" ADD CONSTRAINT "webhook_delivery_attempts_delivery_id_webhook_deliveries_id_fk" FOREIGN KEY ("delivery_id") REFERENCES "public"."webhook_deliveries"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "agents_customer_created_idx" ON "agents" USING btree ("customer_id","created_at","id");--> statement-breakpoint
CREATE INDEX "agents_status_idx" ON "agents" USING btree ("status");--> statement-breakpoint
CREATE UNIQUE INDEX "agents_running_bot_idx" ON "agents" USING btree ("telegram_bot_id") WHERE "agents"."status" in ('starting', 'running') and "agents"."telegram_bot_id" is not null;--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_hash_idx" ON "api_keys" USING btree ("hash");--> statement-breakpoint
CREATE INDEX "api_keys_customer_idx" ON "api_keys" USING btree ("customer_id");--> statement-breakpoint
CREATE INDEX "audit_log_customer_created_idx" ON "audit_log" USING btree ("customer_id","created_at","id");--> statement-breakpoint
CREATE INDEX "audit_log_created_idx" ON "audit_log" USING btree ("created_at","id");--> statement-breakpoint
CREATE UNIQUE INDEX "credentials_agent_kind_idx" ON "credentials" USING btree ("agent_id","kind");--> statement-breakpoint
CREATE INDEX "credentials_fingerprint_idx" ON "credentials" USING btree ("kind","fingerprint");--> statement-breakpoint
CREATE INDEX "credentials_key_version_idx" ON "credentials" USING btree ("key_version");--> statement-breakpoint
CREATE INDEX "customers_created_idx" ON "customers" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "customers_plan_status_idx" ON "customers" USING btree ("plan","status","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "pairing_requests_agent_code_idx" ON "pairing_requests" USING btree ("agent_id","code");--> statement-breakpoint
CREATE INDEX "pairing_requests_agent_status_idx" ON "pairing_requests" USING btree ("agent_id","status","expires_at");--> statement-breakpoint
CREATE UNIQUE INDEX "pairing_requests_pending_sender_idx" ON "pairing_requests" USING btree ("agent_id","telegram_user_id") WHERE "pairing_requests"."status" = 'pending';--> statement-breakpoint
CREATE UNIQUE INDEX "telegram_chats_agent_chat_idx" ON "telegram_chats" USING btree ("agent_id","chat_id");--> statement-breakpoint
CREATE UNIQUE INDEX "telegram_messages_agent_update_idx" ON "telegram_messages" USING btree ("agent_id","update_id");--> statement-breakpoint
CREATE INDEX "telegram_messages_history_idx" ON "telegram_messages" USING btree ("agent_id","chat_id","created_at");--> statement-breakpoint
CREATE INDEX "telegram_messages_customer_day_idx" ON "telegram_messages" USING btree ("customer_id","created_at");--> statement-breakpoint
CREATE INDEX "telegram_messages_outbox_idx" ON "telegram_messages" USING btree ("created_at") WHERE "telegram_messages"."event_sent_at" is null and "telegram_messages"."direction" = 'inbound';--> statement-breakpoint
CREATE UNIQUE INDEX "webhook_deliveries_event_idx" ON "webhook_deliveries" USING btree ("event_id");--> statement-breakpoint
CREATE INDEX "webhook_deliveries_customer_created_idx" ON "webhook_deliveries" USING btree ("customer_id","created_at","id");--> statement-breakpoint
CREATE INDEX "webhook_delivery_attempts_delivery_idx" ON "webhook_delivery_attempts" USING btree ("delivery_id","attempt");