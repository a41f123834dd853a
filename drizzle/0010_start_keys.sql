CREATE TABLE "executor_start_keys" (
	"key" text NOT NULL,
	"item_id" bigint NOT NULL,
	CONSTRAINT "executor_start_keys_key_item_id_pk" PRIMARY KEY("key","item_id")
);
--> statement-breakpoint
ALTER TABLE "executor_start_keys" ADD CONSTRAINT "executor_start_keys_item_id_executor_queue_id_fk" FOREIGN KEY ("item_id") REFERENCES "public"."executor_queue"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "executor_start_keys_item_idx" ON "executor_start_keys" USING btree ("item_id");--> statement-breakpoint
-- The runs queued when this migration runs keep their place.
INSERT INTO "executor_start_keys" ("key", "item_id")
SELECT DISTINCT c ->> 'key', q.id
FROM "executor_queue" q
JOIN "executor_runs" r ON r.id = q.run_id
CROSS JOIN LATERAL jsonb_array_elements(r.concurrency) c
WHERE q.kind = 'start' AND r.status = 'queued' AND c ->> 'key' IS NOT NULL
ON CONFLICT DO NOTHING;
