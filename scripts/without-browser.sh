#!/usr/bin/env bash
# Runs a command as on a machine without Chromium: in a private mount namespace, every browser that
# test/support/browser.ts would find (/usr/bin/chromium, chromium, chromium-browser and google-chrome on PATH,
# and the @sparticuz/chromium package) is hidden behind an overlay whose upper folder holds a whiteout.
# Nothing outside the namespace changes. Needs root (or CAP_SYS_ADMIN) and util-linux's unshare.
#   scripts/without-browser.sh npx vitest run test/dashboard.test.ts
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != --inside ]; then
  exec unshare --mount --propagation private "$0" --inside "$@"
fi
shift
hide() { # hide DIR NAME: whiteout DIR/NAME
  local scratch
  scratch=$(mktemp -d)
  mkdir "$scratch/up" "$scratch/work"
  mknod "$scratch/up/$2" c 0 0
  mount -t overlay overlay -o "lowerdir=$1,upperdir=$scratch/up,workdir=$scratch/work" "$1"
}
for command in chromium chromium-browser google-chrome; do
  while path=$(command -v "$command"); do
    hide "$(dirname "$path")" "$command"
    hash -r
  done
done
[ -e node_modules/@sparticuz/chromium ] && hide "$PWD/node_modules/@sparticuz" chromium
unset CHROMIUM CHROME_PATH
exec "$@"
