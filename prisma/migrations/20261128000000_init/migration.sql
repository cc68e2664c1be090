-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "TaskStatus" AS ENUM ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED');

-- CreateEnum
CREATE TYPE "TaskEventType" AS ENUM ('CREATED', 'STARTED', 'PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED', 'REQUEUED', 'STUCK', 'DELETED');

-- CreateTable
CREATE TABLE "Task" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "name" TEXT NOT NULL,
    "kind" TEXT NOT NULL DEFAULT 'backtest',
    "params" JSONB NOT NULL DEFAULT '{}',
    "status" "TaskStatus" NOT NULL DEFAULT 'PENDING',
    "progress" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "message" TEXT,
    "attempt" INTEGER NOT NULL DEFAULT 0,
    "maxAttempts" INTEGER NOT NULL DEFAULT 3,
    "workerId" TEXT,
    "leaseToken" TEXT,
    "timeoutMinutes" DOUBLE PRECISION,
    "error" TEXT,
    "result" JSONB,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "startedAt" TIMESTAMPTZ(3),
    "lastHeartbeatAt" TIMESTAMPTZ(3),
    "lastProgressAt" TIMESTAMPTZ(3),
    "completedAt" TIMESTAMPTZ(3),
    "stuckEpisode" TEXT,

    CONSTRAINT "Task_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "TaskEvent" (
    "id" BIGSERIAL NOT NULL,
    "taskId" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "type" "TaskEventType" NOT NULL,
    "fromStatus" "TaskStatus",
    "toStatus" "TaskStatus",
    "progress" DOUBLE PRECISION,
    "message" TEXT,
    "actor" TEXT NOT NULL,
    "reason" TEXT,
    "attempt" INTEGER NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "TaskEvent_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "MonitorSweep" (
    "id" BIGSERIAL NOT NULL,
    "startedAt" TIMESTAMPTZ(3) NOT NULL,
    "finishedAt" TIMESTAMPTZ(3) NOT NULL,
    "action" TEXT NOT NULL,
    "timeoutMinutes" DOUBLE PRECISION NOT NULL,
    "scanned" INTEGER NOT NULL,
    "found" INTEGER NOT NULL,
    "fixed" INTEGER NOT NULL,
    "trigger" TEXT NOT NULL,

    CONSTRAINT "MonitorSweep_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Task_status_kind_createdAt_idx" ON "Task"("status", "kind", "createdAt");

-- CreateIndex
CREATE INDEX "Task_createdAt_idx" ON "Task"("createdAt");

-- CreateIndex
CREATE INDEX "TaskEvent_taskId_id_idx" ON "TaskEvent"("taskId", "id");

-- CreateIndex
CREATE INDEX "MonitorSweep_startedAt_idx" ON "MonitorSweep"("startedAt");

