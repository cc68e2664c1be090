import Table from 'cli-table3';
import type { Command } from 'commander';
import pc from 'picocolors';
import type { Colors } from 'picocolors/types.js';
import { createTaskwardenClient, type TaskwardenClient } from '../client/index.js';
import type { TaskStatus } from '../client/index.js';

/** The options every command takes (defined once on the program). */
export interface GlobalOptions {
  /** The GraphQL endpoint. */
  url: string;
  token?: string;
  /** One JSON document on stdout instead of tables (NDJSON for `watch`). */
  json: boolean;
  /** False with --no-color; NO_COLOR and a non-terminal stdout turn colours off too. */
  color: boolean;
}

export type { Colors };

/** How a command speaks: tables and colours for people, or JSON for automation. */
export interface Output {
  readonly json: boolean;
  readonly c: Colors;
  /** Prints the command's result: `data` as one JSON document under --json, otherwise what `human` renders. */
  result<T>(data: T, human: (data: T) => string): void;
  /** A line for people on stdout; nothing under --json. */
  say(text: string): void;
  /** One JSON object per line (watch --json). */
  ndjson(value: unknown): void;
  table(head: string[], rows: (string | number)[][]): string;
}

export function createOutput(options: Pick<GlobalOptions, 'json' | 'color'>): Output {
  const c = pc.createColors(options.color && !options.json && pc.isColorSupported);
  return {
    json: options.json,
    c,
    result(data, human) {
      process.stdout.write(options.json ? `${jsonText(data, 2)}\n` : `${human(data)}\n`);
    },
    say(text) {
      if (!options.json) process.stdout.write(`${text}\n`);
    },
    ndjson(value) {
      process.stdout.write(`${jsonText(value)}\n`);
    },
    table(head, rows) {
      const colored = c.isColorSupported;
      const table = new Table({
        head: head.map((h) => c.bold(h)),
        style: { head: [], border: colored ? ['grey'] : [] },
        chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' }, // no rule between rows
      });
      table.push(...rows.map((row) => row.map(String)));
      return table.toString();
    },
  };
}

/** The global options as the command sees them. */
export function globalOptions(command: Command): GlobalOptions {
  const options = command.optsWithGlobals<GlobalOptions>();
  return { ...options, json: Boolean(options.json) };
}

export interface CommandContext {
  options: GlobalOptions;
  out: Output;
  client: TaskwardenClient;
}

/**
 * Wraps a command handler: builds the typed client (able to subscribe with
 * `subscriptions`) and the output from the global options, and closes the
 * client afterwards. A handler may return an exit code; what it throws goes
 * to the one error mapper (src/cli/errors.ts).
 */
export function withClient<O>(handler: (context: CommandContext, options: O) => Promise<number | void>, setup: { subscriptions?: boolean } = {}) {
  return async (options: O, command: Command) => {
    const global = globalOptions(command);
    // Only `watch` subscribes: the others need not load a WebSocket implementation.
    const webSocketImpl = setup.subscriptions ? (await import('ws')).default : undefined;
    const client = createTaskwardenClient({ url: global.url, token: global.token, webSocketImpl });
    try {
      const code = await handler({ options: global, out: createOutput(global), client }, options);
      if (code) process.exitCode = code;
    } finally {
      await client.close();
    }
  };
}

// What a terminal would act on or draw misleadingly: C0 and C1 controls (ESC starts colour,
// cursor, title and clipboard sequences), DEL, bidi overrides and isolates, lone surrogates.
const unprintable = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const escape = (char: string) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * Text from the server (a task's name, message, worker id, an error) as the
 * terminal may show it: each unprintable character becomes a visible \uXXXX.
 * The server refuses them in new input; this covers what was stored before,
 * or comes from a server that does not. Colours are added after, by us.
 */
export function printable(text: string): string {
  return text.replace(unprintable, escape);
}

/** JSON for stdout: JSON.stringify escapes C0 controls and lone surrogates; this escapes C1 and bidi ones too (same value). */
export function jsonText(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(/[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, escape);
}

/** "Examples:" after a command's --help. */
export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => `  $ ${line}`).join('\n')}\n`;
}

/** The colour of a task status. */
export function statusColor(c: Colors, value: TaskStatus) {
  return { PENDING: c.dim, RUNNING: c.cyan, COMPLETED: c.green, FAILED: c.red, CANCELLED: c.yellow }[value];
}

/** A task status in its colour, padded to `width` (padding inside the colour codes, so columns line up). */
export function status(c: Colors, value: TaskStatus, width = 0): string {
  return statusColor(c, value)(value.padEnd(width));
}

/** 45s, 3m 07s, 2h 05m, 3d 4h. */
export function duration(seconds: number | null | undefined): string {
  if (seconds == null) return '-';
  const s = Math.max(0, Math.round(seconds));
  const [d, h, m, sec] = [Math.floor(s / 86_400), Math.floor((s % 86_400) / 3600), Math.floor((s % 3600) / 60), s % 60];
  const two = (n: number) => String(n).padStart(2, '0');
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${two(m)}m`;
  if (m) return `${m}m ${two(sec)}s`;
  return `${sec}s`;
}

/** A stuck timeout as given in minutes: "30 min", or "1m 30s" when it is not whole. */
export function minutesText(minutes: number): string {
  return Number.isInteger(minutes) ? `${minutes} min` : duration(minutes * 60);
}

/** What a stuck verdict was judged by: an operator's one timeout, or (none given) each task's clocks and the monitor's. */
export function judgedBy(timeoutMinutes: number | null | undefined): string {
  return timeoutMinutes == null ? "each task's own clocks and the monitor's" : `timeout ${minutesText(timeoutMinutes)}`;
}

/** "2m 05s ago" for a timestamp, by this machine's clock. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  return iso ? `${duration((now - Date.parse(iso)) / 1000)} ago` : '-';
}

/** 14:03:07, in local time. */
export function clockTime(iso: string): string {
  return new Date(iso).toTimeString().slice(0, 8);
}

export function percent(value: number | null | undefined, digits = 0): string {
  return value == null ? '-' : `${value.toFixed(digits)}%`;
}

/** Cuts a long name to `width` characters, with an ellipsis. */
export function truncate(text: string, width = 40): string {
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}

/** A name for a table cell or a line: printable, then cut to `width`. */
export function label(text: string, width = 40): string {
  return truncate(printable(text), width);
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
