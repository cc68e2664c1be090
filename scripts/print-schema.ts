// Prints the GraphQL schema, sorted, into schema/schema.graphql; with --check,
// fails when the committed file differs from what the code prints.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { printedSchema } from '../src/graphql/print.js';

const file = fileURLToPath(new URL('../schema/schema.graphql', import.meta.url));
const printed = printedSchema();

if (process.argv.includes('--check')) {
  let committed = '';
  try {
    committed = readFileSync(file, 'utf8');
  } catch {
    // missing counts as different
  }
  if (committed !== printed) {
    console.error('schema/schema.graphql is out of date: run `npm run schema:print` and commit the result.');
    process.exit(1);
  }
  console.log('schema/schema.graphql is up to date.');
} else {
  writeFileSync(file, printed);
  console.log(`wrote ${file}`);
}
