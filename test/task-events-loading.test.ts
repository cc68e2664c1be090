import { beforeEach, expect, it } from 'vitest';
import { describeEachDatabase, useTestDatabase } from './support/databases.js';
import { useTestServer } from './support/server.js';

// Task.events over a page of tasks: one batched read per request, not one per task (an N+1).
describeEachDatabase('Task.events on a page of tasks [%s]', (kind) => {
  let statements = 0;
  const database = useTestDatabase(kind, { reset: false, onQuery: () => statements++ });
  const server = useTestServer(database);
  beforeEach(() => database.reset());

  /** How many SQL statements the server sent while answering this query. */
  const statementsFor = async (query: string) => {
    const before = statements;
    const data = await server.ok(query);
    return { data, statements: statements - before };
  };

  it('reads the events of a 100-task page in a bounded number of statements, each task its own', async () => {
    const { tasks } = server.taskwarden.services;
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) ids.push((await tasks.create({ name: `t${i}` })).id);
    // Every other task is started: two entries (CREATED, STARTED) instead of one.
    for (const id of ids.filter((_, i) => i % 2 === 0)) await tasks.start(id, 'w');

    const page = await statementsFor(`{ tasks(first: 100) { edges { node { id name events { type actor } } } } }`);
    const nodes = page.data.tasks.edges.map((edge: { node: any }) => edge.node);
    expect(nodes).toHaveLength(100);
    for (const node of nodes) {
      const started = ids.indexOf(node.id) % 2 === 0;
      expect(node.events.map((e: { type: string }) => e.type)).toEqual(started ? ['CREATED', 'STARTED'] : ['CREATED']);
    }
    // The page, its count query and one history read; not 100 history reads.
    expect(page.statements).toBeLessThan(10);

    // Arguments apply per task, in the same single read.
    const limited = await statementsFor(
      `{ tasks(first: 100) { edges { node { id first: events(first: 1) { type } started: events(types: [STARTED]) { type } } } } }`,
    );
    for (const { node } of limited.data.tasks.edges) {
      expect(node.first).toEqual([{ type: 'CREATED' }]);
      expect(node.started).toEqual(ids.indexOf(node.id) % 2 === 0 ? [{ type: 'STARTED' }] : []);
    }
    expect(limited.statements).toBeLessThan(10);
  });
});
