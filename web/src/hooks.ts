import { useEffect, useState } from 'preact/hooks';
import type { Board, BoardState } from './board.js';

export function useBoardState(board: Board): BoardState {
  const [state, setState] = useState(board.state);
  useEffect(() => {
    setState(board.state);
    return board.listen(() => setState(board.state));
  }, [board]);
  return state;
}

/** The current time, every `ms` (for spans that grow: stuck for, running for). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

/** The task id of `#/tasks/<id>`, if that is the location. */
export function useOpenTask(): string | undefined {
  const read = () => /^#\/tasks\/([\w-]+)$/.exec(location.hash)?.[1];
  const [id, setId] = useState(read);
  useEffect(() => {
    const onChange = () => setId(read());
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return id;
}

export const taskHref = (id: string) => `#/tasks/${id}`;
