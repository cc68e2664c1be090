// GraphQL Code Generator: typed operations from schema/schema.graphql, one output
// for the client SDK (src/client, src/worker) and one for the dashboard (web/src).
// Runs on install (see package.json) and by `npm run codegen`.
import type { CodegenConfig } from '@graphql-codegen/cli';

// Documents as plain strings with their types attached: no GraphQL parser in the browser bundle.
const typed = {
  preset: 'client',
  presetConfig: { fragmentMasking: false },
  config: {
    documentMode: 'string',
    enumsAsTypes: true,
    useTypeImports: true,
    emitLegacyCommonJSImports: false,
    strictScalars: true,
    scalars: { DateTime: 'string', JSON: 'unknown', ID: 'string' },
  },
} as const;

const config: CodegenConfig = {
  schema: 'schema/schema.graphql',
  ignoreNoDocuments: true,
  generates: {
    // The SDK's operations only: the built SDK (dist/) ships these and nothing of the dashboard's.
    'src/generated/graphql/': { ...typed, documents: ['src/client/**/*.ts'] },
    // The dashboard's own operations, beside the SDK fragments they spread (TaskEventFields).
    'web/src/generated/graphql/': { ...typed, documents: ['web/src/**/*.{ts,tsx}', '!web/src/generated/**', 'src/client/operations.ts'] },
  },
};

export default config;
