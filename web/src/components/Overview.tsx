import type { Overview as OverviewData } from '../board.js';
import { taskHref } from '../hooks.js';
import * as format from '../format.js';
import { ProgressBar, StuckMarker } from './bits.js';
import { OutcomesChart } from './OutcomesChart.js';

type Stats = OverviewData['stats'];

const CARDS: { key: keyof Stats; label: string; show: (stats: Stats) => string; tone?: (stats: Stats) => string | undefined }[] = [
  { key: 'running', label: 'Running', show: (s) => String(s.running) },
  { key: 'pending', label: 'Pending', show: (s) => String(s.pending) },
  { key: 'completed', label: 'Completed', show: (s) => String(s.completed), tone: () => 'good' },
  { key: 'failed', label: 'Failed', show: (s) => String(s.failed), tone: (s) => (s.failed ? 'bad' : undefined) },
  { key: 'cancelled', label: 'Cancelled', show: (s) => String(s.cancelled) },
  { key: 'stuck', label: 'Stuck', show: (s) => String(s.stuck), tone: (s) => (s.stuck ? 'alarm' : undefined) },
  { key: 'successRate', label: 'Success rate', show: (s) => format.percent(s.successRate) },
  { key: 'averageDurationSeconds', label: 'Average duration', show: (s) => format.duration(s.averageDurationSeconds) },
];

export function Overview({ overview, now }: { overview?: OverviewData; now: number }) {
  return (
    <section class="overview" aria-label="Overview">
      <div class="cards">
        {CARDS.map(({ key, label, show, tone }) => (
          <div
            key={key}
            class={`card ${overview ? (tone?.(overview.stats) ?? '') : ''}`}
            data-testid={`stat-${key}`}
            data-value={overview ? String(overview.stats[key] ?? '') : undefined}
          >
            <span class="card-label">{label}</span>
            <span class="card-value">{overview ? show(overview.stats) : '…'}</span>
          </div>
        ))}
      </div>
      <div class="charts">
        <figure class="panel">
          <figcaption>Outcomes per hour, last 24 hours</figcaption>
          {overview && <OutcomesChart buckets={overview.outcomes} />}
        </figure>
        <figure class="panel" data-testid="running-chart">
          <figcaption>
            Running now{overview && overview.runningTotal > overview.running.length ? ` (newest ${overview.running.length} of ${overview.runningTotal})` : ''}
          </figcaption>
          {overview && !overview.running.length && <p class="empty">Nothing is running.</p>}
          <ul class="running">
            {overview?.running.map((task) => (
              <li key={task.id}>
                <a href={taskHref(task.id)} class="running-name">
                  {task.name}
                </a>
                <span class="running-pct">{format.progress(task.progress)}</span>
                <ProgressBar value={task.progress} stuck={task.isStuck} />
                <span class="running-message">
                  <StuckMarker task={task} now={now} /> {task.message ?? ''}
                </span>
              </li>
            ))}
          </ul>
        </figure>
      </div>
    </section>
  );
}
