-- Heartbeats and progress reports rewrite a running task's row again and again. With a tenth of each page
-- left free, Postgres can put the new row version on the same page and leave the Task table's indexes alone
-- (a HOT update: a report changes no indexed column). On packed pages every report also writes a new entry
-- in each of the nine indexes. A 1,000-row report batch took 60-70 ms on packed pages and 23-29 ms with this
-- (BENCHMARKS.md). Prisma's schema cannot say it, so it lives here only; pages written before this
-- migration keep their layout until rewritten (VACUUM FULL), new pages get the room.
ALTER TABLE "Task" SET (fillfactor = 90);
