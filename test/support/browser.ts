import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Finds a Chromium for the browser tests, in this order: `CHROMIUM` or `CHROME_PATH`, `/usr/bin/chromium`,
 * `chromium`, `chromium-browser` or `google-chrome` on PATH, then the headless Chromium that the
 * `@sparticuz/chromium` dev dependency ships inside its npm package (unpacked into the temp folder on first use;
 * nothing is downloaded). Without any of them the browser tests skip themselves with `noBrowserNotice`.
 */
export async function findChromium(env: NodeJS.ProcessEnv = process.env): Promise<{ path: string; from: string } | { missing: string }> {
  for (const name of ['CHROMIUM', 'CHROME_PATH'] as const) {
    const path = env[name];
    // A browser asked for by name must be there: skipping would hide a typo.
    if (path) {
      if (!isExecutable(path)) throw new Error(`${name}=${path} is not an executable file`);
      return { path, from: name };
    }
  }
  if (isExecutable('/usr/bin/chromium')) return { path: '/usr/bin/chromium', from: '/usr/bin/chromium' };
  for (const command of ['chromium', 'chromium-browser', 'google-chrome']) {
    for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
      const path = join(dir, command);
      if (isExecutable(path)) return { path, from: `${command} on PATH` };
    }
  }
  try {
    const bundled = (await import('@sparticuz/chromium')).default;
    return { path: await bundled.executablePath(), from: '@sparticuz/chromium' };
  } catch (error) {
    return { missing: `@sparticuz/chromium: ${(error as Error).message.split('\n')[0]}` };
  }
}

export const noBrowserNotice = (missing: string) =>
  `Skipping the browser tests: no Chromium found (CHROMIUM, CHROME_PATH, /usr/bin/chromium, chromium, chromium-browser, google-chrome; ${missing}). ` +
  'To run them, install one (apt-get install chromium) or set CHROMIUM=/path/to/chrome.';

function isExecutable(path: string) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
