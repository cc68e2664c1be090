import SchemaBuilder from '@pothos/core';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { can, type Permission } from '../auth/roles.js';
import { forbidden } from '../auth/access.js';
import { GraphQLError, GraphQLScalarType } from 'graphql';
import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import type PrismaTypes from '../generated/pothos-prisma-types.js';
import { getDatamodel } from '../generated/pothos-prisma-types.js';
import type { Context } from './context.js';

export const builder = new SchemaBuilder<{
  Context: Context;
  PrismaTypes: PrismaTypes;
  AuthScopes: Record<Permission, boolean>;
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
  };
}>({
  plugins: [ScopeAuthPlugin, PrismaPlugin, RelayPlugin],
  defaultFieldNullability: false,
  // Every root field names the permission it needs (see auth/roles.ts); a test checks none is left out.
  scopeAuth: {
    authorizeOnSubscribe: true,
    authScopes: (ctx) => ({
      read: can(ctx.principal.role, 'read'),
      submit: can(ctx.principal.role, 'submit'),
      work: can(ctx.principal.role, 'work'),
      operate: can(ctx.principal.role, 'operate'),
      admin: can(ctx.principal.role, 'admin'),
      metrics: can(ctx.principal.role, 'metrics'),
    }),
    unauthorizedError: (_parent, ctx, info) => forbidden(ctx.principal, `${info.parentType.name}.${info.fieldName}`),
  },
  prisma: {
    client: (ctx) => ctx.services.prisma,
    dmmf: getDatamodel(),
    exposeDescriptions: true,
    filterConnectionTotalCount: true,
    onUnusedQuery: process.env.NODE_ENV === 'production' ? null : 'warn',
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
  },
});

// Years 1 to 9999 only: beyond them a date has no ISO 8601 form that the database and
// every client agree on (year 0 made the query fail inside the driver).
const earliest = new Date('0001-01-01T00:00:00Z').getTime();
const latest = new Date('9999-12-31T23:59:59.999Z').getTime();
const bounded = (value: unknown): Date => {
  const date = value as Date;
  if (!(date.getTime() >= earliest && date.getTime() <= latest)) throw new GraphQLError('DateTime cannot represent a date outside the years 1 to 9999.');
  return date;
};
const DateTime = new GraphQLScalarType({
  ...DateTimeResolver.toConfig(),
  parseValue: (value) => bounded(DateTimeResolver.parseValue(value)),
  parseLiteral: (ast, variables) => bounded(DateTimeResolver.parseLiteral(ast, variables)),
});

builder.addScalarType('DateTime', DateTime);
builder.addScalarType('JSON', JSONResolver);

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
