import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { databaseKinds, openTestDatabase, useTestDatabase } from './support/databases.js';
import { post } from './support/http.js';
import { startTestServer, useTestServer } from './support/server.js';

// Inputs at the edges of what the API takes: each is the caller's mistake (BAD_USER_INPUT or HTTP 400),
// never an INTERNAL_SERVER_ERROR, and nothing of it is stored.

const CREATE = 'mutation ($input: CreateTaskInput!) { createTask(input: $input) { id name kind params } }';

describe.each(databaseKinds)('edge inputs (%s)', (kind) => {
  const database = useTestDatabase(kind, { reset: false });
  const server = useTestServer(database);

  const refused = async (input: Record<string, unknown>, field: string) => {
    const before = await database.db.prisma.task.count();
    const { json } = await post(server.url, { query: CREATE, variables: { input } });
    expect(json.errors, JSON.stringify(json)).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_USER_INPUT', field }) })]);
    expect(await database.db.prisma.task.count()).toBe(before);
    return json.errors[0].message as string;
  };

  describe('terminal escapes and bidi overrides', () => {
    it.each([
      ['ESC (an ANSI colour sequence)', '\u001b[31mred\u001b[0m'],
      ['an OSC sequence (sets the terminal title)', '\u001b]0;pwned\u0007'],
      ['a carriage return', 'ok\rFAILED'],
      ['a newline', 'line\nbreak'],
      ['DEL', 'a\u007fb'],
      ['C1 CSI (U+009B)', 'a\u009b31mb'],
      ['a right-to-left override (U+202E)', 'invoice\u202Efdp.exe'],
      ['a first-strong isolate (U+2068)', 'a\u2068b'],
    ])('refuses %s in a name, a kind and a message', async (_what, value) => {
      expect(await refused({ name: value }, 'name')).toMatch(/control or bidi-override/);
      await refused({ name: 'fine', kind: value }, 'kind');

      const { createTask } = await server.ok(CREATE, { input: { name: 'worked on' } });
      const { startTask } = await server.ok('mutation ($id: ID!) { startTask(id: $id, workerId: "w1") { leaseToken } }', { id: createTask.id });
      const report = await server.gql(
        'mutation ($id: ID!, $lease: String!, $m: String) { reportProgress(id: $id, leaseToken: $lease, progress: 5, message: $m) { message } }',
        {
          id: createTask.id,
          lease: startTask.leaseToken,
          m: value,
        },
      );
      expect(report.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'message' });
      const start = await server.gql('mutation ($w: String!) { claimTask(workerId: $w) { leaseToken } }', { w: `worker${value}` });
      expect(start.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'workerId' });
    });

    it('keeps line breaks and tabs in free text (a failure reason), and plain Unicode in names', async () => {
      const { createTask } = await server.ok(CREATE, { input: { name: '回测 BTC/USDT — ünïcödé ✓' } });
      const { startTask } = await server.ok('mutation ($id: ID!) { startTask(id: $id, workerId: "w1") { leaseToken } }', { id: createTask.id });
      const failed = await server.ok('mutation ($id: ID!, $lease: String!, $e: String!) { failTask(id: $id, leaseToken: $lease, error: $e) { error } }', {
        id: createTask.id,
        lease: startTask.leaseToken,
        e: 'Traceback:\n\tline 1\r\n',
      });
      expect(failed.failTask.error).toBe('Traceback:\n\tline 1\r\n');
    });
  });

  describe('malformed values', () => {
    const nest = (depth: number) => {
      let value: unknown = 'bottom';
      for (let i = 0; i < depth; i++) value = { a: value };
      return value;
    };

    it('refuses params nested 4,100 deep (the limit is 64), and takes 64', async () => {
      expect(await refused({ name: 'deep', params: nest(4100) }, 'params')).toMatch(/at most 64 levels/);
      expect(await refused({ name: 'deep', params: [nest(64)] }, 'params')).toMatch(/at most 64 levels/);
      const ok = await server.ok(CREATE, { input: { name: 'deep enough', params: nest(63) } });
      expect(JSON.stringify(ok.createTask.params)).toContain('bottom');
    });

    it('refuses lone surrogates in a name, in params values and in params keys', async () => {
      expect(await refused({ name: 'bad \ud800 half' }, 'name')).toMatch(/lone surrogate/);
      await refused({ name: 'x', params: { note: 'half \udc00' } }, 'params');
      await refused({ name: 'x', params: { ['key\ud800']: 1 } }, 'params');
      // A raw body: the JSON escape itself, as a client would send it.
      const { json } = await post(server.url, `{"query":${JSON.stringify(CREATE)},"variables":{"input":{"name":"raw \\ud800"}}}`);
      expect(json.errors[0].extensions.code).toBe('BAD_USER_INPUT');
      // A well-formed pair (an emoji) is fine.
      expect((await server.ok(CREATE, { input: { name: 'rocket \ud83d\ude80', params: { k: '\ud83d\ude80' } } })).createTask.name).toBe('rocket 🚀');
    });

    it('refuses NUL, but not the text "\\u0000" (a backslash and five characters)', async () => {
      await refused({ name: 'x', params: { s: 'nul \u0000 here' } }, 'params');
      await refused({ name: 'x', params: { ['k\u0000']: 1 } }, 'params');
      const text = String.raw`C:\u0000 is not a NUL`;
      const { createTask } = await server.ok(CREATE, { input: { name: text, params: { path: text, [text]: true } } });
      expect(createTask).toMatchObject({ name: text, params: { path: text, [text]: true } });
    });

    it.each(['0000-01-01T00:00:00Z', '-000001-01-01T00:00:00Z', '+275760-09-13T00:00:00Z'])(
      'refuses taskStats(since: "%s") as BAD_USER_INPUT',
      async (since) => {
        const literal = await post(server.url, { query: `{ taskStats(since: "${since}") { total } }` });
        expect(literal.status).toBeLessThan(500);
        expect(literal.json.errors[0].extensions.code).toBe('BAD_USER_INPUT');
        const variable = await post(server.url, { query: 'query ($since: DateTime) { taskStats(since: $since) { total } }', variables: { since } });
        expect(variable.json.errors[0].extensions.code).toBe('BAD_USER_INPUT');
      },
    );

    it.each(['0001-01-01T00:00:00Z', '1970-01-01T00:00:00Z', '9999-12-31T23:59:59Z'])('takes taskStats(since: "%s")', async (since) => {
      expect((await server.ok(`{ taskStats(since: "${since}") { total } }`)).taskStats.total).toEqual(expect.any(Number));
    });

    it('answers GET with variables={bad with 400', async () => {
      const response = await fetch(`${server.url}?query=${encodeURIComponent('{ monitor { enabled } }')}&variables={bad`, {
        headers: { accept: 'application/json' },
      });
      expect(response.status).toBe(400);
      const json = (await response.json()) as any;
      expect(json.errors[0].extensions.code).toBe('BAD_REQUEST');
    });
  });
});

describe('production hygiene at the HTTP edge', () => {
  const database = useTestDatabase('pglite', { reset: false });
  const server = useTestServer(database, { NODE_ENV: 'production' });

  it('does not echo a malformed JSON body back (no extensions.originalError)', async () => {
    const secret = 'tw_secret_in_a_broken_body';
    const { status, json, text } = await post(server.url, `{"query": "{ monitor { enabled } }", "x": "${secret}"`);
    expect(status).toBe(400);
    expect(json.errors[0].extensions.code).toBe('BAD_REQUEST');
    expect(json.errors[0].extensions.originalError).toBeUndefined();
    expect(text).not.toContain(secret);
  });

  it('sets explicit header and request timeouts on the HTTP server', () => {
    const { server: http } = server.taskwarden.app;
    expect(http.headersTimeout).toBe(20_000);
    expect(http.requestTimeout).toBe(60_000);
  });
});

describe('connections per client address', () => {
  it('caps open connections from one address (MAX_CONNECTIONS_PER_ADDRESS) and frees a slot when one closes', async () => {
    const database = await openTestDatabase('pglite');
    // The test connects from loopback, which may hold the larger of the two caps (MAX_ANONYMOUS_CONNECTIONS_PER_ADDRESS
    // lets a bench or a room of dashboards on this machine in): both are 3 here.
    const server = await startTestServer(database, { MAX_CONNECTIONS_PER_ADDRESS: '3', MAX_ANONYMOUS_CONNECTIONS_PER_ADDRESS: '3' });
    const { port } = new URL(server.url);
    const open = () =>
      new Promise<{ socket: ReturnType<typeof connect>; closed: Promise<void> }>((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1', () => resolve({ socket, closed }));
        const closed = new Promise<void>((done) => socket.on('close', () => done()));
        socket.on('error', reject);
      });
    const held = [await open(), await open(), await open()];
    // The fourth is closed by the server at once, without an answer.
    const extra = await open();
    extra.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await extra.closed;
    // Held sockets still work.
    const answer = new Promise<string>((resolve) => held[0]!.socket.once('data', (chunk) => resolve(String(chunk))));
    held[0]!.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(await answer).toMatch(/^HTTP\/1.1 200/);
    // Closing one frees its slot.
    held[1]!.socket.destroy();
    await held[1]!.closed;
    await expect.poll(async () => (await fetch(server.url.replace('/graphql', '/health')).catch(() => undefined))?.status, { timeout: 5000 }).toBe(200);
    for (const { socket } of held) socket.destroy();
    await server.stop();
    await database.close();
  });
});

describe('the CLI shows stored control characters escaped, never raw', () => {
  const hostile = {
    name: 'report\u001b]0;pwned\u0007\u001b[2J\u202Egnp.exe',
    message: 'step \u009b31m\u2066 ok\r',
    workerId: 'w\u001b[8m',
  };
  const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

  it('escapes them in every kind of output (printable, JSON)', async () => {
    const { printable, jsonText } = await import('../src/cli/output.js');
    expect(printable(hostile.name)).toBe('report\\u001b]0;pwned\\u0007\\u001b[2J\\u202egnp.exe');
    expect(printable('回测 🚀 ünï')).toBe('回测 🚀 ünï');
    expect(printable('half \ud800')).toBe('half \\ud800');
    const json = jsonText(hostile, 2);
    expect(json).not.toMatch(raw);
    expect(JSON.parse(json)).toEqual(hostile);
  });

  it('taskwarden list and stuck, as tables and as JSON, against a real server', async () => {
    const { spawn } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const database = await openTestDatabase('pglite');
    const server = await startTestServer(database, { HEARTBEAT_TIMEOUT: '1m', STALL_TIMEOUT: '1m', MONITOR_ACTION: 'none' });
    // Stored before the server refused such names (or written by another tool): it must still print safely.
    await database.db.prisma.task.create({
      data: {
        name: hostile.name,
        status: 'RUNNING',
        message: hostile.message,
        workerId: hostile.workerId,
        startedAt: new Date(0),
        lastHeartbeatAt: new Date(0),
        lastProgressAt: new Date(0),
      },
    });
    const cli = (args: string[]) =>
      new Promise<{ stdout: string; stderr: string; code: number | null }>((resolve) => {
        const child = spawn(process.execPath, [fileURLToPath(new URL('../bin/taskwarden.js', import.meta.url)), ...args], {
          env: { ...process.env, TASKWARDEN_URL: server.url, NO_COLOR: '1', DATABASE_URL: '', DATA_DIR: '' },
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk) => (stdout += chunk));
        child.stderr.on('data', (chunk) => (stderr += chunk));
        child.on('close', (code) => resolve({ stdout, stderr, code }));
      });
    const list = await cli(['list']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).not.toMatch(raw);
    expect(list.stdout).toContain('report\\u001b]0;pwned');
    const stuck = await cli(['stuck', '--timeout', '1']);
    expect(stuck.stdout).not.toMatch(raw);
    expect(stuck.stdout).toContain('\\u009b31m');
    expect(stuck.stdout).toContain('w\\u001b[8m');
    const json = await cli(['list', '--json']);
    expect(json.stdout).not.toMatch(raw);
    expect(JSON.parse(json.stdout).tasks[0].name).toBe(hostile.name);
    await server.stop();
    await database.close();
  }, 60_000);
});
