import {
  createTaskwardenClient,
  stuckActionOutcome,
  TaskwardenClientError,
  type KindQueueFieldsFragment,
  type TaskStatus,
  type TaskwardenClient,
} from 'taskwarden/client';
import type {
  BoardAlertsSubscription,
  BoardOverviewQuery,
  BoardTaskFieldsFragment,
  BoardTasksQueryVariables,
  BoardUpdatesSubscription,
} from './generated/graphql/graphql.js';
import * as format from './format.js';
import { BoardAlertsDocument, BoardOverviewDocument, BoardTasksDocument, BoardUpdatesDocument } from './documents.js';

/** A task as the board shows it, with when this copy arrived (to tick "stuck for" on). */
export type BoardTask = BoardTaskFieldsFragment & { seenAt: number };
export type TaskEvent = BoardUpdatesSubscription['taskUpdated'];
export type StuckAlert = Omit<BoardAlertsSubscription['stuckTaskDetected'], 'task'> & { key: number; task: BoardTask };

/** connecting: no live connection yet; syncing: connected, catching up; live; reconnecting: it dropped. */
export type Connection = 'connecting' | 'syncing' | 'live' | 'reconnecting';

export interface Filter {
  status: TaskStatus[];
  kind: string;
  search: string;
}

export interface Page {
  rows: BoardTask[];
  totalCount: number;
  /** 1-based. */
  number: number;
  hasNext: boolean;
  startCursor?: string | null;
  endCursor?: string | null;
  loading: boolean;
  error?: string;
}

export interface Overview {
  stats: BoardOverviewQuery['taskStats'];
  monitor: BoardOverviewQuery['monitor'];
  outcomes: BoardOverviewQuery['taskOutcomes'];
  running: BoardTask[];
  runningTotal: number;
  /** Each kind's queue: limits and pause are the operator's. */
  queues: KindQueueFieldsFragment[];
  /** Whether this viewer may pause, resume and limit kinds (the server decides; this only hides what it would refuse). */
  canOperate: boolean;
}

export interface Toast {
  id: number;
  tone: 'alert' | 'error' | 'ok';
  text: string;
  taskId?: string;
}

export interface BoardState {
  connection: Connection;
  overview?: Overview;
  overviewError?: string;
  filter: Filter;
  page: Page;
  /** Newest first, since the page opened. */
  alerts: StuckAlert[];
  toasts: Toast[];
}

export const PAGE_SIZE = 20;
const RUNNING_SHOWN = 8;
const MAX_ALERTS = 50;
// Transitions come in bursts (a sweep, a demo): counts are refetched once the burst settles, at least every 2 s.
const REFRESH_DEBOUNCE_MS = 300;
const REFRESH_MAX_WAIT_MS = 2000;
// Stuck-ness grows with time alone, without events: a slow poll keeps markers and counts honest.
const POLL_MS = 30_000;
const TOAST_MS = 8000;

export type Board = ReturnType<typeof createBoard>;

/**
 * The live model behind the page, free of any UI framework: loads the
 * overview and a page of tasks, applies `taskUpdated` events to them in
 * place, turns `stuckTaskDetected` into alerts, and after a reconnect
 * resumes from the last event seen and refetches, so nothing is missed.
 */
export function createBoard(client: TaskwardenClient) {
  let state: BoardState = {
    connection: 'connecting',
    filter: { status: [], kind: '', search: '' },
    page: { rows: [], totalCount: 0, number: 1, hasNext: false, loading: true },
    alerts: [],
    toasts: [],
  };
  const listeners = new Set<() => void>();
  const eventListeners = new Set<(event: TaskEvent) => void>();
  const set = (patch: Partial<BoardState>) => {
    state = { ...state, ...patch };
    listeners.forEach((listener) => listener());
  };

  // The cursor of the last event received: the server sends them in one order, so it is also the latest.
  let lastEventId: string | undefined;
  // Events received so far: a copy that arrived after a fetch began is newer than what the fetch returns.
  let received = 0;
  // Copies that arrived live, newer than what an in-flight fetch may return (null: deleted).
  const live = new Map<string, { arrival: number; task: BoardTask | null }>();
  let pageArgs: BoardTasksQueryVariables = { first: PAGE_SIZE };
  let stopUpdates: (() => void) | undefined;
  let stopAlerts: (() => void) | undefined;
  let stopConnection: (() => void) | undefined;
  let resubscribeTimer: ReturnType<typeof setTimeout> | undefined;
  let pollTimer: ReturnType<typeof setInterval> | undefined;
  let toastSeq = 0;
  let alertSeq = 0;

  const stamp = (task: BoardTaskFieldsFragment): BoardTask => ({ ...task, seenAt: Date.now() });

  /** The freshest copy of a fetched task: the live one when it came after the fetch began. */
  function fresher(task: BoardTaskFieldsFragment, fetchedAfter: number): BoardTask | null {
    const known = live.get(task.id);
    return known && known.arrival > fetchedAfter ? known.task : stamp(task);
  }

  function forgetLiveUpTo(arrival: number) {
    for (const [id, known] of live) if (known.arrival <= arrival) live.delete(id);
  }

  const loadOverview = async () => {
    const fetchedAfter = received;
    try {
      const data = await client.request(BoardOverviewDocument, { running: RUNNING_SHOWN });
      const running = data.running.edges.flatMap((edge) => fresher(edge.node, fetchedAfter) ?? []);
      set({
        overview: {
          stats: data.taskStats,
          monitor: data.monitor,
          outcomes: data.taskOutcomes,
          running,
          runningTotal: data.running.totalCount,
          queues: data.queues,
          canOperate: data.viewer.role === 'OPERATOR' || data.viewer.role === 'ADMIN',
        },
        overviewError: undefined,
      });
    } catch (error) {
      set({ overviewError: messageOf(error) });
    }
    return fetchedAfter;
  };

  // Only the page asked for last is shown: an answer for an older filter or page that arrives late is dropped.
  let pageAsked = 0;
  const loadPage = async (args: BoardTasksQueryVariables, number: number) => {
    const fetchedAfter = received;
    const asked = ++pageAsked;
    const { status, kind, search } = state.filter;
    set({ page: { ...state.page, loading: true } });
    try {
      const { tasks } = await client.request(BoardTasksDocument, {
        ...args,
        status: status.length ? status : undefined,
        kind: kind || undefined,
        search: search.trim() || undefined,
      });
      if (asked !== pageAsked) return fetchedAfter;
      pageArgs = args;
      set({
        page: {
          rows: tasks.edges.flatMap((edge) => fresher(edge.node, fetchedAfter) ?? []),
          totalCount: tasks.totalCount,
          number,
          // Paging back from a page means there is one after it, whatever the connection says.
          hasNext: args.before ? true : tasks.pageInfo.hasNextPage,
          startCursor: tasks.pageInfo.startCursor,
          endCursor: tasks.pageInfo.endCursor,
          loading: false,
        },
      });
    } catch (error) {
      if (asked === pageAsked) set({ page: { ...state.page, loading: false, error: messageOf(error) } });
    }
    return fetchedAfter;
  };

  // One refresh at a time, and one more after it when asked meanwhile, so answers never arrive out of order.
  let refreshing: Promise<void> | undefined;
  let refreshAgain = false;
  function refresh(): Promise<void> {
    if (refreshing) {
      refreshAgain = true;
      return refreshing;
    }
    refreshing = (async () => {
      do {
        refreshAgain = false;
        const [after] = await Promise.all([loadOverview(), loadPage(pageArgs, state.page.number)]);
        forgetLiveUpTo(after);
      } while (refreshAgain);
      refreshing = undefined;
    })();
    return refreshing;
  }

  let refreshTimer: ReturnType<typeof setTimeout> | undefined;
  let firstAskedAt: number | undefined;
  function scheduleRefresh() {
    const now = Date.now();
    firstAskedAt ??= now;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(
      () => {
        firstAskedAt = undefined;
        void refresh();
      },
      Math.max(0, Math.min(REFRESH_DEBOUNCE_MS, firstAskedAt + REFRESH_MAX_WAIT_MS - now)),
    );
  }

  function matchesFilter(task: BoardTaskFieldsFragment) {
    const { status, kind, search } = state.filter;
    return (
      (!status.length || status.includes(task.status)) &&
      (!kind || task.kind === kind) &&
      (!search.trim() || task.name.toLowerCase().includes(search.trim().toLowerCase()))
    );
  }

  /** Puts a newer copy of a task (or its deletion) everywhere it shows. */
  function applyTask(id: string, task: BoardTask | null, created = false) {
    const replace = (rows: BoardTask[]) => rows.flatMap((row) => (row.id !== id ? [row] : task ? [task] : []));
    let { rows, totalCount } = state.page;
    const shown = rows.some((row) => row.id === id);
    if (shown) {
      rows = replace(rows);
      if (!task) totalCount--;
    } else if (created && task && state.page.number === 1 && matchesFilter(task)) {
      rows = [task, ...rows].slice(0, PAGE_SIZE);
      totalCount++;
    }
    const overview = state.overview && { ...state.overview, running: replace(state.overview.running) };
    set({ page: { ...state.page, rows, totalCount }, overview });
  }

  function onEvent(event: TaskEvent) {
    lastEventId = event.id;
    const task = event.task ? stamp(event.task) : null;
    live.set(event.taskId, { arrival: ++received, task });
    applyTask(event.taskId, task, event.type === 'CREATED');
    if (event.type !== 'PROGRESS') scheduleRefresh();
    eventListeners.forEach((listener) => listener(event));
  }

  function onAlert(alert: BoardAlertsSubscription['stuckTaskDetected']) {
    const task = stamp(alert.task);
    const entry: StuckAlert = { ...alert, task, key: ++alertSeq };
    set({ alerts: [entry, ...state.alerts].slice(0, MAX_ALERTS) });
    const outcome = stuckActionOutcome(alert.actionTaken);
    toast('alert', `Stuck: ${task.name}, ${alert.reason} for ${format.duration(alert.stuckForSeconds)}; ${outcome} by ${alert.actor}`, task.id);
    scheduleRefresh();
  }

  function toast(tone: Toast['tone'], text: string, taskId?: string) {
    const id = ++toastSeq;
    set({ toasts: [...state.toasts, { id, tone, text, taskId }].slice(-5) });
    setTimeout(() => dismissToast(id), tone === 'ok' ? TOAST_MS / 2 : TOAST_MS);
  }

  function dismissToast(id: number) {
    if (state.toasts.some((t) => t.id === id)) set({ toasts: state.toasts.filter((t) => t.id !== id) });
  }

  /** A subscription that ends or fails for good (a refused token, say) is opened again a little later, resuming from the last event seen. */
  function reopenWhenEnded(forget: () => void) {
    const ended = () => {
      forget();
      clearTimeout(resubscribeTimer);
      resubscribeTimer = setTimeout(subscribe, 1000);
    };
    return { error: ended, complete: ended };
  }

  function subscribe() {
    // Followed: after a reconnect or an overflow it resumes after the last event by itself.
    stopUpdates ??= client.followTaskUpdates(
      { afterEventId: lastEventId },
      { next: onEvent, error: reopenWhenEnded(() => (stopUpdates = undefined)).error },
      BoardUpdatesDocument,
    );
    stopAlerts ??= client.subscribe(
      BoardAlertsDocument,
      {},
      { next: (data) => onAlert(data.stuckTaskDetected), ...reopenWhenEnded(() => (stopAlerts = undefined)) },
    );
  }

  function onConnection(change: 'connected' | 'closed') {
    if (change === 'closed') {
      if (state.connection !== 'connecting') set({ connection: 'reconnecting' });
      return;
    }
    set({ connection: 'syncing' });
    subscribe();
    void refresh().then(() => {
      if (state.connection === 'syncing') set({ connection: 'live' });
    });
  }

  return {
    get state() {
      return state;
    },
    client,
    /** Hears every change of state; returns the function that stops listening. */
    listen(listener: () => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** Hears every live task event (the detail view's timeline). */
    onTaskEvent(listener: (event: TaskEvent) => void) {
      eventListeners.add(listener);
      return () => eventListeners.delete(listener);
    },
    start() {
      stopConnection = client.onConnection(onConnection);
      subscribe();
      void refresh();
      pollTimer = setInterval(() => {
        if (document.visibilityState === 'visible') void refresh();
      }, POLL_MS);
    },
    async stop() {
      clearInterval(pollTimer);
      clearTimeout(refreshTimer);
      clearTimeout(resubscribeTimer);
      stopConnection?.();
      stopUpdates?.();
      stopAlerts?.();
      await client.close();
    },
    refresh,
    setFilter(patch: Partial<Filter>) {
      set({ filter: { ...state.filter, ...patch } });
      return loadPage({ first: PAGE_SIZE }, 1);
    },
    nextPage() {
      return loadPage({ first: PAGE_SIZE, after: state.page.endCursor }, state.page.number + 1);
    },
    previousPage() {
      const number = state.page.number - 1;
      return loadPage(number <= 1 ? { first: PAGE_SIZE } : { last: PAGE_SIZE, before: state.page.startCursor }, Math.max(1, number));
    },
    /** Shows what an action returned at once; its event follows through the subscription. */
    showTask(task: BoardTaskFieldsFragment) {
      applyTask(task.id, stamp(task));
      scheduleRefresh();
    },
    showDeleted(id: string) {
      applyTask(id, null);
      scheduleRefresh();
    },
    /** A kind's queue as an operator's change left it; the rest follows at the next refresh. */
    showQueue(queue: KindQueueFieldsFragment) {
      if (state.overview) {
        const others = state.overview.queues.filter((q) => q.kind !== queue.kind);
        set({ overview: { ...state.overview, queues: [...others, queue].sort((a, b) => (a.kind < b.kind ? -1 : 1)) } });
      }
      scheduleRefresh();
    },
    clearAlerts() {
      set({ alerts: [] });
    },
    toast,
    dismissToast,
  };
}

/** The API client for this page: same origin, with the token saved in settings (if any). */
export function createPageClient(): TaskwardenClient {
  return createTaskwardenClient({ url: new URL('/graphql', location.href).href, token: savedToken() });
}

const TOKEN_KEY = 'taskwarden.token';
export const savedToken = () => localStorage.getItem(TOKEN_KEY) || undefined;
export function saveToken(token: string) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** The server's own words for a failed request (and, when it wants a token, where to give it one). */
export function messageOf(error: unknown): string {
  if (error instanceof TaskwardenClientError && error.code === 'UNAUTHENTICATED') return `${error.message} Open Settings to give this page an API token.`;
  return error instanceof TaskwardenClientError || error instanceof Error ? error.message : String(error);
}
