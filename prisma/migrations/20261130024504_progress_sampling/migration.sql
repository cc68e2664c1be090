-- AlterTable
ALTER TABLE "Task" ADD COLUMN     "progressRecordedAt" TIMESTAMPTZ(3);

