#!/usr/bin/env bash
# Makes sure bash (with bash-completion), zsh and fish are there for xswctl's completion
# test (cmd/xswctl). When one is missing it installs Debian's packages as root;
# otherwise it says how, and the test then fails in CI (CI is set there) and is skipped
# on a developer's machine.
set -euo pipefail

missing=()
command -v zsh >/dev/null || missing+=(zsh)
command -v fish >/dev/null || missing+=(fish)
[ -f /usr/share/bash-completion/bash_completion ] || missing+=(bash-completion)
[ ${#missing[@]} = 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "${missing[*]} not installed: installing from Debian's packages (for xswctl's completion test)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  exit 0
fi

echo "No ${missing[*]}: xswctl's completion test will skip those shells (it fails when CI is set)." >&2
echo "Install them with: sudo apt-get install -y ${missing[*]}" >&2
if [ -n "${CI:-}" ]; then
  exit 1
fi
exit 0
