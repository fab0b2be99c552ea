#!/usr/bin/env bash
# Makes sure a Chromium is there for the dashboard's browser test (dev/e2e). When none
# is found it installs Debian's chromium package as root; otherwise it says how, and the
# test then fails in CI (CI is set there) and is skipped on a developer's machine.
set -euo pipefail

for b in chromium chromium-browser google-chrome; do
  command -v "$b" >/dev/null && exit 0
done

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Chromium is not installed: installing it from Debian's packages (for the browser test)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  command -v chromium >/dev/null && exit 0
  echo "installing chromium did not give a chromium command" >&2
  exit 1
fi

echo "No Chromium: the dashboard's browser test will be skipped (it fails when CI is set)." >&2
echo "Install it with: sudo apt-get install -y chromium" >&2
if [ -n "${CI:-}" ]; then
  exit 1
fi
exit 0
