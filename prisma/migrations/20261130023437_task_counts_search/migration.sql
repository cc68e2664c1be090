-- CreateExtension
CREATE EXTENSION IF NOT EXISTS "pg_trgm";

-- DropIndex
DROP INDEX "Task_status_kind_createdAt_idx";

-- DropIndex
DROP INDEX "Task_createdAt_idx";

-- CreateTable
CREATE TABLE "TaskCount" (
    "id" BIGSERIAL NOT NULL,
    "kind" TEXT NOT NULL,
    "status" "TaskStatus" NOT NULL,
    "n" INTEGER NOT NULL,
    "seconds" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "timed" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "TaskCount_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Task_status_kind_createdAt_id_idx" ON "Task"("status", "kind", "createdAt", "id");

-- CreateIndex
CREATE INDEX "Task_status_createdAt_id_idx" ON "Task"("status", "createdAt", "id");

-- CreateIndex
CREATE INDEX "Task_kind_createdAt_id_idx" ON "Task"("kind", "createdAt", "id");

-- CreateIndex
CREATE INDEX "Task_createdAt_id_idx" ON "Task"("createdAt", "id");

-- CreateIndex
CREATE INDEX "Task_status_startedAt_idx" ON "Task"("status", "startedAt");

-- CreateIndex
CREATE INDEX "Task_name_trgm_idx" ON "Task" USING GIN ("name" gin_trgm_ops);

-- CreateIndex
CREATE INDEX "TaskEvent_type_at_idx" ON "TaskEvent"("type", "at");


-- Counters. Every insert, delete, and change of status or kind on "Task" appends -1 for the row it was
-- and +1 for the row it is, in the same statement (so in the same transaction as the transition).
-- Appending instead of updating one row per kind and status means concurrent transitions never lock
-- each other (nor deadlock) here; the counts are the sums, and the monitor folds the rows now and then.
CREATE FUNCTION "task_count_delta"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    INSERT INTO "TaskCount" (kind, status, n, seconds, timed)
    VALUES (OLD.kind, OLD.status, -1,
            CASE WHEN OLD.status = 'COMPLETED' THEN -COALESCE(EXTRACT(EPOCH FROM OLD."completedAt" - OLD."startedAt")::float8, 0) ELSE 0 END,
            CASE WHEN OLD.status = 'COMPLETED' AND OLD."completedAt" IS NOT NULL AND OLD."startedAt" IS NOT NULL THEN -1 ELSE 0 END);
  END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN
    INSERT INTO "TaskCount" (kind, status, n, seconds, timed)
    VALUES (NEW.kind, NEW.status, 1,
            CASE WHEN NEW.status = 'COMPLETED' THEN COALESCE(EXTRACT(EPOCH FROM NEW."completedAt" - NEW."startedAt")::float8, 0) ELSE 0 END,
            CASE WHEN NEW.status = 'COMPLETED' AND NEW."completedAt" IS NOT NULL AND NEW."startedAt" IS NOT NULL THEN 1 ELSE 0 END);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER "Task_count_insert_delete" AFTER INSERT OR DELETE ON "Task"
  FOR EACH ROW EXECUTE FUNCTION "task_count_delta"();

-- Heartbeats and progress change none of these columns, so they never fire it.
CREATE TRIGGER "Task_count_update" AFTER UPDATE OF status, kind, "startedAt", "completedAt" ON "Task"
  FOR EACH ROW
  WHEN ((OLD.status, OLD.kind, OLD."startedAt", OLD."completedAt") IS DISTINCT FROM (NEW.status, NEW.kind, NEW."startedAt", NEW."completedAt"))
  EXECUTE FUNCTION "task_count_delta"();

-- Backfill: one row per kind and status for the tasks already there. The table is locked against
-- writes meanwhile, so no transition falls between the count and the trigger.
LOCK TABLE "Task" IN SHARE MODE;
INSERT INTO "TaskCount" (kind, status, n, seconds, timed)
SELECT kind, status, count(*)::int,
       COALESCE(sum(EXTRACT(EPOCH FROM "completedAt" - "startedAt")::float8) FILTER (WHERE status = 'COMPLETED'), 0),
       (count(*) FILTER (WHERE status = 'COMPLETED' AND "completedAt" IS NOT NULL AND "startedAt" IS NOT NULL))::int
FROM "Task" GROUP BY kind, status;
