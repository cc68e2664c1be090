import { useState } from 'preact/hooks';
import type { Board } from './board.js';
import { useBoardState, useNow, useOpenTask } from './hooks.js';
import { AlertList, Toasts } from './components/Alerts.js';
import { ActionDialog, type Action } from './components/dialogs.js';
import { Header } from './components/Header.js';
import { Overview } from './components/Overview.js';
import { Queues } from './components/Queues.js';
import { TaskDetail } from './components/TaskDetail.js';
import { TaskTable } from './components/TaskTable.js';

export function App({ board }: { board: Board }) {
  const state = useBoardState(board);
  const now = useNow();
  const openTask = useOpenTask();
  const [action, setAction] = useState<Action>();
  return (
    <>
      <Header state={state} />
      <main>
        {state.overviewError && (
          <p class="error-line banner" role="alert">
            {state.overviewError}
          </p>
        )}
        <Overview overview={state.overview} now={now} />
        <Queues overview={state.overview} board={board} />
        <div class="lower">
          <TaskTable state={state} board={board} now={now} act={setAction} />
          <AlertList alerts={state.alerts} board={board} />
        </div>
      </main>
      {openTask && <TaskDetail id={openTask} board={board} now={now} act={setAction} onClose={() => (location.hash = '')} />}
      {action && <ActionDialog action={action} board={board} onClose={() => setAction(undefined)} />}
      <Toasts toasts={state.toasts} board={board} />
    </>
  );
}
