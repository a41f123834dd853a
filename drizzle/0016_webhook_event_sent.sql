ALTER TABLE "webhook_deliveries" ADD COLUMN "event_sent_at" timestamp with time zone;--> statement-breakpoint
-- Deliveries stored before the column came out of an engine that took their event (or lost it long
-- ago, past the engine's 24 h dedupe window, where sending it again could deliver it twice): all sent.
UPDATE "webhook_deliveries" SET "event_sent_at" = "created_at";--> statement-breakpoint
CREATE INDEX "webhook_deliveries_unsent_idx" ON "webhook_deliveries" USING btree ("created_at") WHERE "webhook_deliveries"."event_sent_at" is null;
