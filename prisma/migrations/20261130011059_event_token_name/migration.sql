-- AlterTable
ALTER TABLE "TaskEvent" ADD COLUMN     "tokenName" TEXT;

