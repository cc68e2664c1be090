import { createHash, randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { Clock } from '../clock.js';
import { badInput, TaskwardenError } from '../errors.js';
import type { EventBus, Topics } from '../events.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { TokenRole } from '../generated/prisma/enums.js';
import { tokenName, type EnvToken } from './env-tokens.js';
import { roles, type Principal, type Role } from './roles.js';

const scrypt = promisify(scryptCallback) as (secret: string, salt: string, keylen: number, options: { N: number }) => Promise<Buffer>;

/**
 * scrypt, not a plain digest: a leaked table must not hand out working
 * tokens, and the API is also used with TASKWARDEN_TOKENS secrets that people
 * choose. Verifying costs tens of milliseconds, so verified tokens are cached
 * (see VERIFIED_TTL_MS); revocation clears the cache on every instance.
 */
const SCRYPT_N = 2 ** 14;
const VERIFIED_TTL_MS = 60_000;
const TOKENS_EXIST_TTL_MS = 5_000;
/** How long a bearer value that failed stays refused without a second look (nothing can make it valid later: ids are random). */
const FAILED_TTL_MS = 10_000;
const FAILED_MAX = 10_000;
/** Hashed with in place of a missing token's salt, so an unknown id costs what a known one with a wrong secret does. */
const DECOY_SALT = randomBytes(16).toString('base64url');
const PREFIX = 'tw';

/** A token as listed: never its secret. */
export interface TokenInfo {
  name: string;
  role: Role;
  source: 'database' | 'environment';
  createdAt: Date | null;
  createdBy: string | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export type TokenService = ReturnType<typeof createTokenService>;

export function createTokenService({ prisma, clock, bus, envTokens = [] }: { prisma: PrismaClient; clock: Clock; bus: EventBus; envTokens?: EnvToken[] }) {
  const env = envTokens.map((token) => ({ ...token, digest: sha256(token.secret) }));
  const verified = new Map<string, { principal: Principal; until: number }>();
  const failed = new Map<string, number>();
  let existence: { value: boolean; until: number } | undefined;
  let existed = false;

  const toInfo = (row: { name: string; role: TokenRole; createdAt: Date; createdBy: string; lastUsedAt: Date | null; revokedAt: Date | null }): TokenInfo => ({
    name: row.name,
    role: row.role.toLowerCase() as Role,
    source: 'database',
    createdAt: row.createdAt,
    createdBy: row.createdBy,
    lastUsedAt: row.lastUsedAt,
    revokedAt: row.revokedAt,
  });

  let changes: AsyncIterableIterator<Topics['token:changed']> | undefined;

  // Open mode asks the database on every tokenless request, and under load hundreds ask at once. They share
  // one count: a caller who finds a count running waits for the next one, which starts after the running one
  // ends, so no answer is older than the request that asked (a count begun before it could predate a token
  // just made on another instance), and at most one count runs however many wait.
  let counting: Promise<void> | undefined; // settles when the running count does, never rejects
  let nextCount: Promise<boolean> | undefined;
  function countNow(): Promise<boolean> {
    const count = prisma.apiToken.count().then((n) => (existed ||= n > 0));
    const running: Promise<void> = count.then(
      () => {},
      () => {}, // the callers of this count get its error; the next count is tried afresh
    );
    counting = running;
    void running.then(() => {
      if (counting === running) counting = undefined;
    });
    return count;
  }
  function everExistedNow(): Promise<boolean> {
    if (!counting) return countNow();
    nextCount ??= counting.then(() => {
      nextCount = undefined;
      return existed || countNow();
    });
    return nextCount;
  }

  return {
    /** Follows token changes: another instance revoked or created a token, so this one forgets what it cached. */
    start() {
      if (changes) return;
      const following = (changes = bus.subscribe('token:changed'));
      void (async () => {
        for await (const change of following) {
          existence = undefined;
          if (change.tokenId) for (const [key, entry] of verified) if (entry.principal.tokenId === change.tokenId) verified.delete(key);
        }
      })();
    },

    /** Stops following token changes (shutdown). */
    async stop() {
      await changes?.return?.();
    },

    /** Whether any token exists: with none, a loopback-only server is open to all. */
    async any(): Promise<boolean> {
      if (env.length > 0) return true;
      if (existence && existence.until > Date.now()) return existence.value;
      const value = (await prisma.apiToken.count({ where: { revokedAt: null } })) > 0;
      existence = { value, until: Date.now() + TOKENS_EXIST_TTL_MS };
      return value;
    },

    /**
     * Whether a token was ever made, revoked ones included (and TASKWARDEN_TOKENS): once one was, the
     * server never reopens. Asked on every tokenless request in open mode, so not cached while false:
     * a token made on another instance closes this one at its next request, bus or no bus.
     */
    async everExisted(): Promise<boolean> {
      if (env.length > 0 || existed) return true;
      return everExistedNow();
    },

    /** Creates a token; the secret is in the returned string only and cannot be read again. */
    async create(input: { name: string; role: string; createdBy: string }): Promise<{ token: string; info: TokenInfo }> {
      const name = tokenName(input.name);
      const role = input.role.toLowerCase();
      if (!(roles as readonly string[]).includes(role)) throw badInput('role', `must be one of ${roles.join(', ')}`);
      if (env.some((t) => t.name === name)) throw new TaskwardenError('ALREADY_EXISTS', `A token named ${name} is given in TASKWARDEN_TOKENS.`);
      const id = randomBytes(9).toString('base64url');
      const secret = randomBytes(32).toString('base64url');
      const salt = randomBytes(16).toString('base64url');
      const hash = (await scrypt(secret, salt, 32, { N: SCRYPT_N })).toString('base64url');
      const row = await prisma.$transaction(async (tx) => {
        // Names are unique among live tokens (a revoked name may be reused); the lock makes the check-then-insert safe.
        await tx.$queryRaw`SELECT pg_advisory_xact_lock(${0x70ce_7015})::text`;
        if (await tx.apiToken.findFirst({ where: { name, revokedAt: null } })) {
          throw new TaskwardenError('ALREADY_EXISTS', `A token named ${name} exists; revoke it first or choose another name.`);
        }
        return tx.apiToken.create({
          data: { id, name, role: role.toUpperCase() as TokenRole, salt, hash, createdAt: clock.now(), createdBy: input.createdBy },
        });
      });
      existence = undefined;
      existed = true;
      bus.publish('token:changed', { tokenId: null, name });
      return { token: `${PREFIX}_${id}_${secret}`, info: toInfo(row) };
    },

    async list(): Promise<TokenInfo[]> {
      const rows = await prisma.apiToken.findMany({ orderBy: [{ revokedAt: { sort: 'desc', nulls: 'first' } }, { createdAt: 'asc' }] });
      const fromEnv: TokenInfo[] = env.map((t) => ({
        name: t.name,
        role: t.role,
        source: 'environment',
        createdAt: null,
        createdBy: null,
        lastUsedAt: null,
        revokedAt: null,
      }));
      return [...fromEnv, ...rows.map(toInfo)];
    },

    /**
     * Revokes the live token of that name; its open subscriptions are closed (see server/connections.ts).
     * With `keepAnAdmin`, refuses (LAST_ADMIN_TOKEN) to revoke the last live admin token.
     */
    async revoke(name: string, revokedBy: string, { keepAnAdmin = false }: { keepAnAdmin?: boolean } = {}): Promise<{ info: TokenInfo; tokenId: string }> {
      tokenName(name);
      if (env.some((t) => t.name === name)) {
        throw new TaskwardenError('INVALID_TRANSITION', `${name} comes from TASKWARDEN_TOKENS: remove it there and restart.`);
      }
      const row = await prisma.$transaction(async (tx) => {
        // The same lock as create: two revocations at once must not each leave the other's admin as "the last one".
        await tx.$queryRaw`SELECT pg_advisory_xact_lock(${0x70ce_7015})::text`;
        const live = await tx.apiToken.findFirst({ where: { name, revokedAt: null } });
        if (!live) throw new TaskwardenError('NOT_FOUND', `No live token is named ${name}.`);
        if (keepAnAdmin && live.role === 'ADMIN' && !env.some((t) => t.role === 'admin')) {
          const admins = await tx.apiToken.count({ where: { role: 'ADMIN', revokedAt: null } });
          if (admins <= 1) {
            throw new TaskwardenError(
              'LAST_ADMIN_TOKEN',
              `${name} is the last admin token, and this server listens beyond loopback: without it nobody could manage tokens. Create another admin token first.`,
            );
          }
        }
        return tx.apiToken.update({ where: { id: live.id }, data: { revokedAt: clock.now(), revokedBy } });
      });
      for (const [key, entry] of verified) if (entry.principal.tokenId === row.id) verified.delete(key);
      existence = undefined;
      bus.publish('token:changed', { tokenId: row.id, name });
      return { info: toInfo(row), tokenId: row.id };
    },

    /** The principal a bearer token stands for, or null when it is not a live token. */
    async verify(bearer: string): Promise<Principal | null> {
      const key = sha256(bearer);
      const cached = verified.get(key);
      if (cached && cached.until > Date.now()) return cached.principal;
      verified.delete(key);
      if ((failed.get(key) ?? 0) > Date.now()) return null;
      const principal = await lookup(bearer);
      if (principal) verified.set(key, { principal, until: Date.now() + VERIFIED_TTL_MS });
      else remember(key);
      return principal;
    },

    /** Whether this bearer value was verified lately (so checking it again costs nothing). */
    isVerified(bearer: string): boolean {
      return (verified.get(sha256(bearer))?.until ?? 0) > Date.now();
    },
  };

  /** Failures are cached briefly, so repeating a wrong token costs no scrypt; bounded, oldest out first. */
  function remember(key: string) {
    failed.delete(key);
    failed.set(key, Date.now() + FAILED_TTL_MS);
    if (failed.size > FAILED_MAX) failed.delete(failed.keys().next().value!);
  }

  async function lookup(bearer: string): Promise<Principal | null> {
    const match = new RegExp(`^${PREFIX}_([A-Za-z0-9_-]{12})_([A-Za-z0-9_-]{43})$`).exec(bearer);
    if (match) {
      const found = await prisma.apiToken.findUnique({ where: { id: match[1]! } });
      const row = found && !found.revokedAt ? found : undefined;
      // The same scrypt work whether or not the id exists: the time taken must not tell.
      const hash = await scrypt(match[2]!, row?.salt ?? DECOY_SALT, 32, { N: SCRYPT_N });
      if (!row || !timingSafeEqual(hash, Buffer.from(row.hash, 'base64url'))) return null;
      await prisma.apiToken.update({ where: { id: row.id }, data: { lastUsedAt: clock.now() } }).catch(() => {});
      return { name: row.name, role: row.role.toLowerCase() as Role, tokenId: row.id, source: 'database' };
    }
    const digest = sha256(bearer);
    const fromEnv = env.find((t) => timingSafeEqual(Buffer.from(t.digest, 'hex'), Buffer.from(digest, 'hex')));
    return fromEnv ? { name: fromEnv.name, role: fromEnv.role, tokenId: `env:${fromEnv.name}`, source: 'environment' } : null;
  }
}

function sha256(text: string) {
  return createHash('sha256').update(text).digest('hex');
}
