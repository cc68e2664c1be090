import { readFileSync } from 'node:fs';

/** The q-quantile (0..1) of the samples, nearest rank. */
export function quantile(samples: number[], q: number): number {
  if (samples.length === 0) return NaN;
  const sorted = Float64Array.from(samples).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export const round = (x: number, digits = 0) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : NaN);

interface ProfileNode {
  id: number;
  callFrame: { url: string; functionName: string };
  hitCount?: number;
}

/** Where a frame's code lives, as a reader would name it: a package, one of our source files, node itself, or the VM. */
export function moduleOf(url: string, functionName: string): string {
  if (url.startsWith('wasm://')) return 'wasm (Prisma query compiler)';
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = path.slice(nm + 'node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  if (path.startsWith('node:')) return path.split('/').slice(0, 2).join('/');
  const src = path.indexOf('/src/');
  if (src >= 0) return path.slice(src + 1).replace(/\.(ts|js)$/, '');
  const bench = path.indexOf('/bench/');
  if (bench >= 0) return path.slice(bench + 1);
  return path;
}

/** Self time by module from a .cpuprofile (node --cpu-prof), largest first, as shares of all samples. */
export function selfTimeByModule(file: string, top = 12): { module: string; share: number; ms: number }[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const ms = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id)!;
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    const name = moduleOf(node.callFrame.url, node.callFrame.functionName);
    ms.set(name, (ms.get(name) ?? 0) + dt);
    total += dt;
  });
  return [...ms.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([module, t]) => ({ module, share: t / total, ms: t }));
}
