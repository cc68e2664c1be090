import { existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync, closeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { TaskwardenError } from '../errors.js';

/**
 * The embedded database's folder. PGlite takes no lock of its own and two
 * processes writing one directory corrupt it (electric-sql/pglite#1106), so
 * every opener (server, CLI repair path, migrations) goes through here.
 *
 * Layout: `<dir>/pg` is PGlite's PGDATA, `<dir>/taskwarden.lock` names the
 * process that holds it, `<dir>/ready` marks a database that finished its first
 * start (so a half-made one can be told apart from one holding data).
 */
/** DATA_DIR=memory keeps the embedded database in memory: nothing is written to disk, and nothing survives a restart. */
export const MEMORY = 'memory';

export interface DataDir {
  readonly path: string;
  readonly pgdata: string;
  /** True when the database finished a first start before; false for a new or half-made one. */
  readonly initialised: boolean;
  markReady(): void;
  release(): void;
}

interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

const READY_FILE = 'ready';

/** Whether `dir` holds an embedded database that finished its first start; it neither opens nor locks it. */
export function holdsDatabase(dir: string): boolean {
  return existsSync(join(resolve(dir), READY_FILE));
}

export function acquireDataDir(dir: string): DataDir {
  const path = resolve(dir);
  mkdirSync(path, { recursive: true });
  const lockFile = join(path, 'taskwarden.lock');
  const readyFile = join(path, READY_FILE);
  const pgdata = join(path, 'pg');

  takeLock(lockFile, path);

  let initialised = existsSync(readyFile);
  if (!initialised && existsSync(pgdata) && readdirSync(pgdata).length > 0) {
    // A first start was cut short (for example killed during initdb). Nothing a
    // user stored can be in it, since tasks are only accepted after `ready` is
    // written, so start over instead of failing on every later start.
    rmSync(pgdata, { recursive: true, force: true });
  }
  if (initialised && !(existsSync(join(pgdata, 'PG_VERSION')) && existsSync(join(pgdata, 'global', 'pg_control')))) {
    releaseLock(lockFile);
    throw new TaskwardenError(
      'DATA_DIR_DAMAGED',
      `The database in ${pgdata} is damaged (PG_VERSION or global/pg_control is missing). ` +
        `Restore it from a backup, or move ${path} away to start with an empty database.`,
    );
  }

  return {
    path,
    pgdata,
    get initialised() {
      return initialised;
    },
    markReady() {
      if (!initialised) {
        writeFileSync(readyFile, `${new Date().toISOString()}\n`);
        initialised = true;
      }
    },
    release() {
      releaseLock(lockFile);
    },
  };
}

function takeLock(lockFile: string, dir: string): void {
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fd = openSync(lockFile, 'wx');
      const owner: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
      writeFileSync(fd, JSON.stringify(owner));
      closeSync(fd);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = readOwner(lockFile);
    if (owner && isAlive(owner)) {
      throw new TaskwardenError(
        'DATA_DIR_LOCKED',
        `The database in ${dir} is in use by process ${owner.pid} on ${owner.host} (since ${owner.since}). ` +
          `Stop that process first, use the running server's API, or set DATA_DIR to another folder. ` +
          `If no such process exists, delete ${lockFile}.`,
      );
    }
    // The owner is gone (crash, kill -9): its lock is stale and ours to take.
    try {
      unlinkSync(lockFile);
    } catch {
      // Another process took it over first; the next round reports it.
    }
  }
  throw new TaskwardenError('DATA_DIR_LOCKED', `Could not lock ${dir}: another process keeps taking it.`);
}

function readOwner(lockFile: string): LockOwner | undefined {
  try {
    const owner = JSON.parse(readFileSync(lockFile, 'utf8')) as LockOwner;
    return typeof owner.pid === 'number' ? owner : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true; // cannot check another host's processes: assume it is held
  if (owner.pid === process.pid) return true;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function releaseLock(lockFile: string): void {
  const owner = readOwner(lockFile);
  if (owner?.pid === process.pid && owner.host === hostname()) {
    try {
      unlinkSync(lockFile);
    } catch {
      // already gone
    }
  }
}
