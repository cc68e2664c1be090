import { roles } from '../auth/roles.js';
import type { TokenInfo } from '../auth/tokens.js';
import { builder } from './builder.js';

const TokenRoleEnum = builder.enumType('TokenRole', {
  description:
    'viewer: queries and subscriptions. worker: also createTask and the lease-holder writes. operator: also createTask, stop, force, cleanup, delete and sweeps. admin: everything, tokens too.',
  values: Object.fromEntries(roles.map((role) => [role.toUpperCase(), { value: role }])) as Record<
    Uppercase<(typeof roles)[number]>,
    { value: (typeof roles)[number] }
  >,
});

const ApiTokenRef = builder.objectRef<TokenInfo>('ApiToken').implement({
  description: 'An API token, without its secret.',
  fields: (t) => ({
    name: t.exposeString('name'),
    role: t.expose('role', { type: TokenRoleEnum }),
    source: t.exposeString('source', { description: '"database" (made with createApiToken or the CLI) or "environment" (TASKWARDEN_TOKENS).' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', nullable: true }),
    createdBy: t.exposeString('createdBy', { nullable: true }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
  }),
});

const CreatedApiTokenRef = builder.objectRef<{ token: string; info: TokenInfo }>('CreatedApiToken').implement({
  fields: (t) => ({
    token: t.exposeString('token', { description: 'The secret: shown this once, never again.' }),
    apiToken: t.field({ type: ApiTokenRef, resolve: (created) => created.info }),
  }),
});

const ViewerRef = builder.objectRef<{ name: string; role: (typeof roles)[number]; open: boolean }>('Viewer').implement({
  description: 'Who the server takes the caller to be.',
  fields: (t) => ({
    name: t.exposeString('name'),
    role: t.expose('role', { type: TokenRoleEnum }),
    open: t.exposeBoolean('open', { description: 'True in open mode: a loopback-only server where no token was ever made lets everyone in.' }),
  }),
});

builder.queryFields((t) => ({
  viewer: t.field({
    authScopes: { read: true },
    type: ViewerRef,
    resolve: (_root, _args, ctx) => ({ name: ctx.principal.name, role: ctx.principal.role, open: ctx.principal.source === 'open' }),
  }),
  apiTokens: t.field({
    authScopes: { admin: true },
    type: [ApiTokenRef],
    description: 'Every token, live ones first; secrets are never shown.',
    resolve: (_root, _args, ctx) => ctx.services.tokens.list(),
  }),
}));

builder.mutationFields((t) => ({
  createApiToken: t.field({
    authScopes: { admin: true },
    type: CreatedApiTokenRef,
    args: { name: t.arg.string({ required: true }), role: t.arg({ type: TokenRoleEnum, required: true }) },
    resolve: (_root, args, ctx) => ctx.services.tokens.create({ name: args.name, role: args.role, createdBy: ctx.principal.name }),
  }),
  revokeApiToken: t.field({
    authScopes: { admin: true },
    type: ApiTokenRef,
    description:
      'Revokes the live token of that name; its open subscriptions are closed at once. On a server that listens beyond loopback, the last admin token cannot be revoked (LAST_ADMIN_TOKEN).',
    args: { name: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => (await ctx.services.access.revokeToken(args.name, ctx.principal.name)).info,
  }),
}));
