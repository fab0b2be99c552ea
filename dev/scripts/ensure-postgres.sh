#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers for the tests and the local run. With
# DATABASE_URL or TEST_DATABASE_URL set, it only checks that one. Otherwise it checks
# 127.0.0.1:5432 and, when nothing answers, starts the local cluster (installing
# PostgreSQL from Debian's packages when it is missing and we are root).
set -euo pipefail

url=${TEST_DATABASE_URL:-${DATABASE_URL:-}}
if [ -n "$url" ]; then
  if command -v psql >/dev/null && ! psql "$url" -Atc 'select 1' >/dev/null 2>&1; then
    echo "PostgreSQL at the configured URL does not answer: ${url%%@*}@..." >&2
    exit 1
  fi
  exit 0
fi

ready() { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; }
ready && exit 0

if ! command -v pg_ctlcluster >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "PostgreSQL is not installed: installing it from Debian's packages" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "No PostgreSQL on 127.0.0.1:5432. Install and start one (user postgres, trust auth)," >&2
    echo "or set DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/xsw" >&2
    exit 1
  fi
fi

version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
if [ -z "$version" ]; then
  echo "PostgreSQL is installed but has no cluster; create one with pg_createcluster" >&2
  exit 1
fi
conf=/etc/postgresql/$version/main
# Local runs and tests connect over TCP as postgres without a password.
if [ -w "$conf/pg_hba.conf" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
  sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf/pg_hba.conf"
fi
pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || pg_ctlcluster "$version" main start
for _ in $(seq 1 30); do ready && exit 0; sleep 1; done
echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2
exit 1
