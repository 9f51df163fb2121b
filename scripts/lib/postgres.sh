# PostgreSQL for the daemon and the tests, on any fresh Debian/Ubuntu/Fedora machine
# or macOS with Homebrew. Sourced by scripts/run and scripts/test.

pg_bin_dir() {
  for d in "${GUILDOPS_DATABASE__POSTGRES_BIN_DIR:-}" $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r) \
           /usr/pgsql-*/bin /opt/homebrew/opt/postgresql*/bin /usr/local/opt/postgresql*/bin /usr/bin /usr/local/bin; do
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then dirname "$(command -v initdb)"; return 0; fi
  return 1
}

# Installs the PostgreSQL server when its binaries are missing (root with apt or dnf).
ensure_postgres_binaries() {
  if pg_bin_dir >/dev/null; then return 0; fi
  echo "PostgreSQL server binaries not found; installing them" >&2
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  elif [ "$(id -u)" = 0 ] && command -v dnf >/dev/null; then
    dnf install -y -q postgresql-server
  elif command -v brew >/dev/null; then
    brew install postgresql
  else
    echo "cannot install PostgreSQL here: install the server package (Debian: postgresql) or set GUILDOPS_TEST_DATABASE_URL" >&2
    return 1
  fi
  pg_bin_dir >/dev/null
}

can_connect() {
  psql "$1" -Atqc 'select 1' >/dev/null 2>&1
}

# Uses GUILDOPS_TEST_DATABASE_URL, else a local server on 5432, else starts a private
# throw-away cluster under target/ (stopped when the script exits).
ensure_test_database() {
  if [ -n "${GUILDOPS_TEST_DATABASE_URL:-}" ]; then return 0; fi
  local local_url="postgres://postgres@127.0.0.1:5432/postgres"
  if command -v psql >/dev/null && can_connect "$local_url"; then
    export GUILDOPS_TEST_DATABASE_URL="$local_url"
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null && ls /etc/postgresql/*/main >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start 2>/dev/null || true
    for _ in $(seq 1 30); do can_connect "$local_url" && break; sleep 1; done
    if can_connect "$local_url"; then export GUILDOPS_TEST_DATABASE_URL="$local_url"; return 0; fi
  fi
  start_private_cluster
}

start_private_cluster() {
  local bin dir port=55432 runas=()
  bin="$(pg_bin_dir)"
  dir="$(pwd)/target/test-postgres"
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    chmod o+x "$(pwd)" "$(pwd)/target" 2>/dev/null || true
    chown postgres "$dir"
    runas=(runuser -u postgres --)
  fi
  if [ ! -f "$dir/PG_VERSION" ]; then
    "${runas[@]}" "$bin/initdb" -D "$dir" -U postgres --auth=trust --no-instructions >/dev/null
  fi
  "${runas[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
     -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=off" start >/dev/null
  # Expanded now: the function's locals are gone when the EXIT trap runs.
  trap "$(printf '%q ' "${runas[@]}" "$bin/pg_ctl" -D "$dir" -m fast -w stop) >/dev/null 2>&1 || true" EXIT
  export GUILDOPS_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

# Test databases are throw-away; drop what earlier runs left on a reused server.
drop_stale_test_databases() {
  psql "$GUILDOPS_TEST_DATABASE_URL" -Atqc "select datname from pg_database where datname like 'guildops\_test\_%'" 2>/dev/null |
    while read -r db; do psql "$GUILDOPS_TEST_DATABASE_URL" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true; done
}
