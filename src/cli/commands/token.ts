import { Command, Option } from 'commander';
import { roles, type Role } from '../../auth/roles.js';
import { TaskwardenClientError, type TaskwardenClient } from '../../client/index.js';
import type { TokenRole } from '../../client/index.js';
import { ago, examples, printable, withClient, type Output } from '../output.js';

/** A token as the CLI shows it (never its secret). */
interface TokenView {
  name: string;
  role: Role;
  source: string;
  createdAt: string | null;
  createdBy: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/** Token management, through the API, or in the server's database when the server is down (or cannot start without a token). */
interface TokenStore {
  create(name: string, role: Role): Promise<{ token: string; info: TokenView }>;
  list(): Promise<TokenView[]>;
  revoke(name: string): Promise<TokenView>;
  close(): Promise<void>;
}

const viewOf = (t: {
  name: string;
  role: string;
  source: string;
  createdAt: Date | string | null;
  createdBy: string | null;
  lastUsedAt: Date | string | null;
  revokedAt: Date | string | null;
}): TokenView => ({
  name: t.name,
  role: t.role.toLowerCase() as Role,
  source: t.source,
  createdAt: iso(t.createdAt),
  createdBy: t.createdBy,
  lastUsedAt: iso(t.lastUsedAt),
  revokedAt: iso(t.revokedAt),
});

function apiStore(client: TaskwardenClient): TokenStore {
  return {
    async create(name, role) {
      const created = await client.createApiToken(name, role.toUpperCase() as TokenRole);
      return { token: created.token, info: viewOf(created.apiToken) };
    },
    list: async () => (await client.apiTokens()).map(viewOf),
    revoke: async (name) => viewOf(await client.revokeApiToken(name)),
    close: async () => {},
  };
}

async function databaseStore(databaseUrl: string | undefined, bootstrap: boolean): Promise<TokenStore & { target: string }> {
  // Loaded only here: the database path brings Prisma and PGlite along.
  const { openServerServices } = await import('../direct-database.js');
  const { services, location, close } = await openServerServices(databaseUrl, { bootstrap });
  const { tokens } = services;
  return {
    target: location,
    async create(name, role) {
      const created = await tokens.create({ name, role, createdBy: 'cli' });
      return { token: created.token, info: viewOf(created.info) };
    },
    list: async () => (await tokens.list()).map(viewOf),
    revoke: async (name) => viewOf((await tokens.revoke(name, 'cli')).info),
    close,
  };
}

/** Runs `action` through the API; when the server does not answer, on its database directly. */
async function withStore<T>(
  client: TaskwardenClient,
  out: Output,
  databaseUrl: string | undefined,
  bootstrap: boolean,
  action: (store: TokenStore) => Promise<T>,
): Promise<T> {
  try {
    return await action(apiStore(client));
  } catch (error) {
    if (!(error instanceof TaskwardenClientError && error.isNetworkError)) throw error;
    out.say(`Taskwarden at ${client.url} is unreachable: working on its database directly.`);
    const store = await databaseStore(databaseUrl, bootstrap);
    out.say(`Opened ${store.target}.`);
    try {
      return await action(store);
    } finally {
      await store.close();
    }
  }
}

const databaseOption = () =>
  new Option(
    '--database-url <url>',
    'with the server down: this PostgreSQL database (default: DATABASE_URL, else the PGlite folder DATA_DIR, from the environment or .env)',
  );

export const tokenCommand = () =>
  new Command('token')
    .description('API tokens: create (the secret is shown once), list, revoke. Needs an admin token, or the server down (then its database is used directly)')
    .addHelpText(
      'after',
      examples('taskwarden token create --role worker --name ci-runner', 'taskwarden token list', 'taskwarden token revoke --name ci-runner'),
    )
    .addCommand(
      new Command('create')
        .description('Creates a token and prints its secret, once')
        .requiredOption('--name <name>', 'recorded as the actor of what the token does')
        .addOption(new Option('--role <role>', 'what it may do').choices([...roles]).makeOptionMandatory())
        .addOption(databaseOption())
        .addHelpText(
          'after',
          `${examples(
            'taskwarden token create --role worker --name ci-runner',
            'taskwarden token create --role admin --name alice --json',
            'DATABASE_URL=postgres://db/taskwarden taskwarden token create --role admin --name bootstrap   # before the first start',
          )}\nRoles: viewer (read), worker (createTask and lease-holder writes), operator (createTask, stop, force, cleanup, delete, sweeps), admin (everything).\n`,
        )
        .action(
          withClient<{ name: string; role: Role; databaseUrl?: string }>(async ({ client, out }, options) => {
            const created = await withStore(client, out, options.databaseUrl, true, (store) => store.create(options.name, options.role));
            out.result({ name: created.info.name, role: created.info.role, token: created.token }, (r) =>
              [
                `Created ${out.c.bold(r.role)} token ${out.c.bold(printable(r.name))}. Its secret, shown this once:`,
                '',
                `  ${r.token}`,
                '',
                out.c.dim('Send it as "Authorization: Bearer <token>" (the CLI: --token or TASKWARDEN_TOKEN).'),
              ].join('\n'),
            );
          }),
        ),
    )
    .addCommand(
      new Command('list')
        .description('Lists tokens, live ones first (never their secrets)')
        .addOption(databaseOption())
        .addHelpText('after', examples('taskwarden token list', 'taskwarden token list --json'))
        .action(
          withClient<{ databaseUrl?: string }>(async ({ client, out }, options) => {
            const tokens = await withStore(client, out, options.databaseUrl, false, (store) => store.list());
            out.result({ tokens }, ({ tokens: rows }) =>
              rows.length === 0
                ? 'No tokens: a server on loopback is open to everyone until one exists.'
                : out.table(
                    ['name', 'role', 'source', 'created', 'by', 'last used', 'revoked'],
                    rows.map((t) => [
                      printable(t.name),
                      t.role,
                      t.source,
                      ago(t.createdAt),
                      printable(t.createdBy ?? '-'),
                      ago(t.lastUsedAt),
                      t.revokedAt ? out.c.red(ago(t.revokedAt)) : '-',
                    ]),
                  ),
            );
          }),
        ),
    )
    .addCommand(
      new Command('revoke')
        .description('Revokes the live token of that name; its open connections are closed at once')
        .requiredOption('--name <name>', 'the token')
        .addOption(databaseOption())
        .addHelpText('after', examples('taskwarden token revoke --name ci-runner'))
        .action(
          withClient<{ name: string; databaseUrl?: string }>(async ({ client, out }, options) => {
            const token = await withStore(client, out, options.databaseUrl, false, (store) => store.revoke(options.name));
            out.result({ token }, (r) => `Revoked ${out.c.bold(printable(r.token.name))} (${r.token.role}).`);
          }),
        ),
    );

function iso(value: Date | string | null): string | null {
  return value == null ? null : value instanceof Date ? value.toISOString() : value;
}
