-- DropIndex
DROP INDEX "TaskEvent_taskId_id_idx";

-- AlterTable
-- Entries written before this migration all get the migrating transaction's id, so they keep their id order
-- and come before every later entry. Cursors handed out before (plain event ids) are refused as STALE_CURSOR.
ALTER TABLE "TaskEvent" ADD COLUMN     "xact" BIGINT NOT NULL DEFAULT (pg_current_xact_id())::text::bigint;

-- CreateIndex
CREATE INDEX "TaskEvent_xact_id_idx" ON "TaskEvent"("xact", "id");

-- CreateIndex
CREATE INDEX "TaskEvent_taskId_xact_id_idx" ON "TaskEvent"("taskId", "xact", "id");

