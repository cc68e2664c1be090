import { render } from 'preact';
import { App } from './App.js';
import { createBoard, createPageClient } from './board.js';
import './styles.css';

const board = createBoard(createPageClient());
board.start();
render(<App board={board} />, document.getElementById('app')!);
