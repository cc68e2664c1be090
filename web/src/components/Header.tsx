import { useState } from 'preact/hooks';
import { saveToken, savedToken, type BoardState } from '../board.js';
import * as format from '../format.js';

const CONNECTION_LABEL: Record<BoardState['connection'], string> = {
  connecting: 'Connecting…',
  syncing: 'Syncing…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
};

export function Header({ state }: { state: BoardState }) {
  const monitor = state.overview?.monitor;
  const [settings, setSettings] = useState(false);
  return (
    <header class="top">
      <h1>
        <img src="/favicon.svg" alt="" width={22} height={22} /> Taskwarden
      </h1>
      <span class={`connection ${state.connection}`} data-testid="connection" data-state={state.connection} role="status">
        {CONNECTION_LABEL[state.connection]}
      </span>
      {monitor && (
        <span class="monitor" data-testid="monitor">
          {monitor.enabled
            ? `Monitor every ${format.duration(monitor.intervalSeconds)}, stuck after ${format.duration(monitor.heartbeatTimeoutSeconds)} silent or ${format.duration(monitor.stallTimeoutMinutes * 60)} without progress, then ${monitor.action.toLowerCase()}${
                monitor.lastSweepAt ? `; last sweep ${format.time(monitor.lastSweepAt)}` : ''
              }`
            : 'Monitor off'}
        </span>
      )}
      <nav>
        <a href="/graphql" target="_blank" rel="noopener">
          GraphiQL
        </a>
        <button type="button" class="link" aria-expanded={settings} onClick={() => setSettings(!settings)}>
          Settings
        </button>
      </nav>
      {settings && <Settings />}
    </header>
  );
}

/** An API token for servers that ask for one; kept in this browser and sent with every request. */
function Settings() {
  const [token, setToken] = useState(savedToken() ?? '');
  return (
    <form
      class="settings"
      onSubmit={(e) => {
        e.preventDefault();
        saveToken(token.trim());
        location.reload();
      }}
    >
      <label class="field">
        API token (kept in this browser)
        <input type="password" autoComplete="off" value={token} onInput={(e) => setToken(e.currentTarget.value)} />
      </label>
      <button type="submit" class="primary">
        Save and reload
      </button>
    </form>
  );
}
