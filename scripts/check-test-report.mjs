#!/usr/bin/env node
// Reads vitest's JSON report and fails unless every suite CI expects ran:
// each file listed in test/expected-tests.json passed at least its count of
// tests, and no test anywhere was skipped, pending or marked todo. A suite
// that skips itself (no PostgreSQL, no Redis, no browser) or a file that
// vanished would otherwise leave the run green.
//
//   node scripts/check-test-report.mjs test-results/vitest.json [test/expected-tests.json]
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';

const [reportPath = 'test-results/vitest.json', expectedPath = 'test/expected-tests.json'] = process.argv.slice(2);
const report = JSON.parse(readFileSync(reportPath, 'utf8'));
const expected = JSON.parse(readFileSync(expectedPath, 'utf8')).files;

const root = process.cwd();
const files = new Map();
for (const file of report.testResults) {
  const name = relative(root, resolve(root, file.name)).split('\\').join('/');
  files.set(name, file.assertionResults);
}

const problems = [];
for (const [name, tests] of files) {
  for (const test of tests) {
    if (test.status !== 'passed' && test.status !== 'failed') problems.push(`${name}: "${test.fullName}" was ${test.status}`);
  }
}
const rows = [];
for (const [name, least] of Object.entries(expected)) {
  const tests = files.get(name);
  const passed = tests?.filter((t) => t.status === 'passed').length ?? 0;
  rows.push(`${String(passed).padStart(5)} passed (at least ${least})  ${name}`);
  if (!tests) problems.push(`${name}: did not run at all`);
  else if (passed < least) problems.push(`${name}: ${passed} tests passed, at least ${least} expected`);
}
for (const [name, tests] of files) {
  if (!(name in expected))
    rows.push(`${String(tests.filter((t) => t.status === 'passed').length).padStart(5)} passed (not listed in ${expectedPath})  ${name}`);
}

// The same suites by name, so a file cannot keep its count while losing a whole variant.
const all = [...files.values()].flat();
const passedLike = (pattern) => all.filter((t) => pattern.test(t.fullName) && t.status === 'passed').length;
const groups = {
  'on PostgreSQL': passedLike(/\[postgres/),
  'with Redis': passedLike(/Redis|\[postgres \+ redis\]/),
  'dashboard in Chromium': passedLike(/the dashboard, in Chromium/),
  'by the Python client (python3 missing?)': passedLike(/^the Python client /),
};
for (const [group, count] of Object.entries(groups)) {
  rows.push(`${String(count).padStart(5)} passed  ${group}`);
  if (count === 0) problems.push(`no test passed ${group}`);
}

console.log(rows.join('\n'));
if (problems.length) {
  console.error(`\nCI needs every expected suite to run:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
