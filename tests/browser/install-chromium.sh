#!/usr/bin/env bash
# Installs the browser the browser tests drive: Debian's `chromium` package (apt-get), when
# no Chromium is there yet. Playwright's Python package drives it through its executable
# path; no browser is ever downloaded by Playwright (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1).
# Prints the executable's path. EXECPLANNER_CHROMIUM names another executable.
set -euo pipefail

found() {
  for candidate in "${EXECPLANNER_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
  done
  return 1
}

if path=$(found); then echo "$path"; exit 0; fi
if [ -n "${EXECPLANNER_CHROMIUM:-}" ]; then
  echo "install-chromium: EXECPLANNER_CHROMIUM=$EXECPLANNER_CHROMIUM is not an executable" >&2; exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "install-chromium: no Chromium at /usr/bin/chromium and no apt-get to install Debian's chromium package;" \
       "install Chromium and set EXECPLANNER_CHROMIUM to its executable" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-chromium: installing chromium needs root (or sudo)" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-chromium: installing Debian's chromium package (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
# One apt-get at a time on this machine (another process may be installing too).
$sudo apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
$sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
path=$(found) || { echo "install-chromium: chromium was installed but /usr/bin/chromium is missing" >&2; exit 1; }
echo "$path"
