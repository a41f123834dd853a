-- Deliveries stored before the column came out of an engine that took their event (or lost it long
-- ago, past the engine's 24 h dedupe window, where sending it again could deliver it twice): all sent.
-- A default of now() (stable, so stored once in the catalogue) marks them without rewriting the table.
ALTER TABLE "webhook_deliveries" ADD COLUMN "event_sent_at" timestamp with time zone DEFAULT now();--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ALTER COLUMN "event_sent_at" DROP DEFAULT;--> statement-breakpoint
CREATE INDEX "webhook_deliveries_unsent_idx" ON "webhook_deliveries" USING btree ("created_at") WHERE "webhook_deliveries"."event_sent_at" is null;
