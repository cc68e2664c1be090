-- AlterTable
ALTER TABLE "Task" ADD COLUMN     "heartbeatTimeoutSeconds" DOUBLE PRECISION,
ADD COLUMN     "stallTimeoutMinutes" DOUBLE PRECISION;

-- AlterTable
ALTER TABLE "MonitorSweep" ADD COLUMN     "detectionDelaySeconds" DOUBLE PRECISION,
ALTER COLUMN "timeoutMinutes" DROP NOT NULL;

