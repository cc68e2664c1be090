-- AlterTable
ALTER TABLE "Task" ADD COLUMN     "backoffFactor" DOUBLE PRECISION,
ADD COLUMN     "backoffInitialSeconds" DOUBLE PRECISION,
ADD COLUMN     "backoffMaxSeconds" DOUBLE PRECISION,
ADD COLUMN     "idempotencyDigest" TEXT,
ADD COLUMN     "idempotencyKey" TEXT,
ADD COLUMN     "priority" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "runAt" TIMESTAMPTZ(3);

-- CreateTable
CREATE TABLE "TaskDependency" (
    "taskId" UUID NOT NULL,
    "dependsOnId" UUID NOT NULL,

    CONSTRAINT "TaskDependency_pkey" PRIMARY KEY ("taskId","dependsOnId")
);

-- CreateTable
CREATE TABLE "KindQueue" (
    "kind" TEXT NOT NULL,
    "maxRunning" INTEGER,
    "paused" BOOLEAN NOT NULL DEFAULT false,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "KindQueue_pkey" PRIMARY KEY ("kind")
);

-- CreateIndex
CREATE INDEX "TaskDependency_dependsOnId_idx" ON "TaskDependency"("dependsOnId");

-- CreateIndex
CREATE UNIQUE INDEX "Task_idempotencyKey_key" ON "Task"("idempotencyKey");

-- CreateIndex
CREATE INDEX "Task_status_kind_priority_runAt_idx" ON "Task"("status", "kind", "priority" DESC, "runAt");

-- AddForeignKey
ALTER TABLE "TaskDependency" ADD CONSTRAINT "TaskDependency_taskId_fkey" FOREIGN KEY ("taskId") REFERENCES "Task"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "TaskDependency" ADD CONSTRAINT "TaskDependency_dependsOnId_fkey" FOREIGN KEY ("dependsOnId") REFERENCES "Task"("id") ON DELETE CASCADE ON UPDATE CASCADE;

