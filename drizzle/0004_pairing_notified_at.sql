ALTER TABLE "pairing_requests" ADD COLUMN "notified_at" timestamp with time zone;--> statement-breakpoint
-- Approvals made before this column are taken as announced: no second "you now have access".
UPDATE "pairing_requests" SET "notified_at" = "decided_at" WHERE "status" = 'approved';
