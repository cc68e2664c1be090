import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Overview } from '../board.js';

type Bucket = Overview['outcomes'][number];

const SERIES = [
  { key: 'completed', label: 'completed', color: '#2da44e' },
  { key: 'failed', label: 'failed', color: '#cf222e' },
  { key: 'cancelled', label: 'cancelled', color: '#9a6700' },
] as const;

/**
 * Stacked bars of finished tasks per bucket. uPlot draws series in order, so
 * the stacks are drawn tallest first: all three, then completed + failed, then completed.
 */
function stacked(buckets: Bucket[]): uPlot.AlignedData {
  const x = buckets.map((b) => Date.parse(b.start) / 1000);
  const sums = SERIES.map((_, i) => buckets.map((b) => SERIES.slice(0, i + 1).reduce((sum, s) => sum + b[s.key], 0)));
  return [x, ...sums.reverse()];
}

export function OutcomesChart({ buckets }: { buckets: Bucket[] }) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | undefined>(undefined);
  const [hover, setHover] = useState<number | null>(null);

  useEffect(() => {
    const el = box.current!;
    const bars = uPlot.paths.bars!({ size: [0.7, 32], gap: 1 });
    const axis = { stroke: '#8b949e', grid: { stroke: 'rgba(139,148,158,0.15)' }, ticks: { show: false } };
    chart.current = new uPlot(
      {
        width: el.clientWidth || 300,
        height: 180,
        legend: { show: false },
        cursor: { points: { show: false }, drag: { x: false, y: false } },
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        axes: [axis, { ...axis, size: 36, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }],
        series: [{}, ...[...SERIES].reverse().map((s) => ({ label: s.label, fill: s.color, stroke: s.color, width: 0, paths: bars, points: { show: false } }))],
        hooks: { setCursor: [(u) => setHover(u.cursor.idx ?? null)] },
      },
      stacked(buckets),
      el,
    );
    const resize = new ResizeObserver(() => chart.current?.setSize({ width: el.clientWidth, height: 180 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      chart.current?.destroy();
    };
  }, []);

  useEffect(() => chart.current?.setData(stacked(buckets)), [buckets]);

  const shown = hover != null ? buckets[hover] : undefined;
  const totals = SERIES.map((s) => ({ ...s, value: shown ? shown[s.key] : buckets.reduce((sum, b) => sum + b[s.key], 0) }));
  return (
    <div class="outcomes-chart" data-testid="outcomes-chart">
      <div ref={box} />
      <p class="legend">
        <span class="legend-when">{shown ? new Date(shown.start).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '24 h'}</span>
        {totals.map((s) => (
          <span key={s.key} class="legend-item">
            <i style={{ background: s.color }} />
            {s.value} {s.label}
          </span>
        ))}
      </p>
    </div>
  );
}
