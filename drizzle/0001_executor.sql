CREATE TABLE "executor_cancels" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"run_id" uuid NOT NULL,
	"event_name" text NOT NULL,
	"expression" text,
	"expires_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "executor_concurrency" (
	"key" text NOT NULL,
	"run_id" uuid NOT NULL,
	CONSTRAINT "executor_concurrency_key_run_id_pk" PRIMARY KEY("key","run_id")
);
--> statement-breakpoint
CREATE TABLE "executor_crons" (
	"function_id" text NOT NULL,
	"cron" text NOT NULL,
	"next_at" timestamp with time zone NOT NULL,
	CONSTRAINT "executor_crons_function_id_cron_pk" PRIMARY KEY("function_id","cron")
);
--> statement-breakpoint
CREATE TABLE "executor_event_ids" (
	"external_id" text PRIMARY KEY NOT NULL,
	"event_id" uuid NOT NULL,
	"seen_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "executor_events" (
	"id" uuid PRIMARY KEY NOT NULL,
	"external_id" text NOT NULL,
	"name" text NOT NULL,
	"data" jsonb NOT NULL,
	"payload" jsonb NOT NULL,
	"ts" bigint NOT NULL,
	"received_at" timestamp with time zone NOT NULL,
	"replay_of" uuid
);
--> statement-breakpoint
CREATE TABLE "executor_functions" (
	"id" text PRIMARY KEY NOT NULL,
	"app_id" text NOT NULL,
	"name" text NOT NULL,
	"config" jsonb NOT NULL,
	"url" text NOT NULL,
	"synced_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "executor_idempotency" (
	"key" text PRIMARY KEY NOT NULL,
	"run_id" uuid NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "executor_queue" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"run_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"step_id" text DEFAULT '' NOT NULL,
	"attempt" integer DEFAULT 0 NOT NULL,
	"available_at" timestamp with time zone NOT NULL,
	"leased_until" timestamp with time zone,
	"leased_by" text,
	"meta" jsonb
);
--> statement-breakpoint
CREATE TABLE "executor_runs" (
	"id" uuid PRIMARY KEY NOT NULL,
	"function_id" text NOT NULL,
	"event_id" uuid,
	"event" jsonb NOT NULL,
	"status" text NOT NULL,
	"output" jsonb,
	"error" jsonb,
	"concurrency" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"throttle_key" text,
	"step_seq" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"started_at" timestamp with time zone,
	"ended_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "executor_steps" (
	"run_id" uuid NOT NULL,
	"step_id" text NOT NULL,
	"name" text,
	"op" text NOT NULL,
	"status" text NOT NULL,
	"data" jsonb,
	"error" jsonb,
	"attempts" integer DEFAULT 1 NOT NULL,
	"seq" integer NOT NULL,
	"started_at" timestamp with time zone,
	"ended_at" timestamp with time zone NOT NULL,
	CONSTRAINT "executor_steps_run_id_step_id_pk" PRIMARY KEY("run_id","step_id")
);
--> statement-breakpoint
CREATE TABLE "executor_waits" (
	"run_id" uuid NOT NULL,
	"step_id" text NOT NULL,
	"name" text,
	"event_name" text NOT NULL,
	"expression" text,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "executor_waits_run_id_step_id_pk" PRIMARY KEY("run_id","step_id")
);
--> statement-breakpoint
CREATE INDEX "executor_cancels_event_idx" ON "executor_cancels" USING btree ("event_name");--> statement-breakpoint
CREATE INDEX "executor_cancels_run_idx" ON "executor_cancels" USING btree ("run_id");--> statement-breakpoint
CREATE INDEX "executor_concurrency_run_idx" ON "executor_concurrency" USING btree ("run_id");--> statement-breakpoint
CREATE INDEX "executor_events_received_idx" ON "executor_events" USING btree ("received_at","id");--> statement-breakpoint
CREATE INDEX "executor_events_name_idx" ON "executor_events" USING btree ("name");--> statement-breakpoint
CREATE INDEX "executor_queue_available_idx" ON "executor_queue" USING btree ("available_at");--> statement-breakpoint
CREATE UNIQUE INDEX "executor_queue_run_step_idx" ON "executor_queue" USING btree ("run_id","kind","step_id");--> statement-breakpoint
CREATE INDEX "executor_runs_list_idx" ON "executor_runs" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "executor_runs_status_idx" ON "executor_runs" USING btree ("status");--> statement-breakpoint
CREATE INDEX "executor_runs_throttle_idx" ON "executor_runs" USING btree ("throttle_key","started_at");--> statement-breakpoint
CREATE INDEX "executor_waits_event_idx" ON "executor_waits" USING btree ("event_name");