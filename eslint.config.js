// Lint: typescript-eslint's recommended rules (without type information, for speed) and no import cycles.
import js from '@eslint/js';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'src/generated/**',
      'web/src/generated/**',
      'web/dist/**',
      'clients/**',
      'coverage/**',
      'test-results/**',
      'scratch/**', // gitignored: a developer's own scripts
      '**/*.d.ts',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.{ts,tsx,js,mjs}'],
    plugins: { 'import-x': importX },
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: { process: 'readonly', console: 'readonly' } },
    // Sources import `./x.js` for `./x.ts` (NodeNext): the resolver maps it back, so the cycle check sees every edge.
    settings: {
      'import-x/extensions': ['.ts', '.tsx', '.js', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.tsx'] },
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.tsx', '.js', '.mjs'], extensionAlias: { '.js': ['.ts', '.tsx', '.js'] } })],
    },
    rules: {
      // The layers import downwards only (ARCHITECTURE.md): a cycle is an error.
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      // `_name` marks a value left out on purpose (destructuring a field away).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      // TypeScript already checks every name; globals differ between node, the browser and scripts.
      'no-undef': 'off',
      // Rejecting control characters is what the validators and the terminal output are for.
      'no-control-regex': 'off',
      // Tests match aligned CLI columns literally.
      'no-regex-spaces': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
      // A variable read by a closure before its one assignment (the demo's worker handles) stays `let`.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // `any` marks the untyped edges (JSON from the wire, test helpers); typed linting would be the way to narrow them.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
);
