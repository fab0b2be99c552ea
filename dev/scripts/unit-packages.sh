#!/usr/bin/env bash
# Lists the packages whose tests `make test` runs before the end-to-end suites (every
# package but dev/e2e's and dev/chaos's), those with the most test code first. go test
# starts packages in the order it is given them, and the biggest suites take longest:
# started first, none of them is left running alone at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."

go list -f '{{.ImportPath}}{{range .TestGoFiles}} {{$.Dir}}/{{.}}{{end}}{{range .XTestGoFiles}} {{$.Dir}}/{{.}}{{end}}' github.com/xswtw/xsw/... |
  grep -v -e /dev/e2e -e /dev/chaos |
  while read -r pkg files; do
    # shellcheck disable=SC2086 # the file names hold no spaces
    echo "$(cat $files /dev/null | wc -c) $pkg"
  done |
  sort -k1,1nr -k2,2 | cut -d' ' -f2
