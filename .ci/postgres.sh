# shellcheck shell=bash
# A throwaway PostgreSQL server for the tests marked `postgres`.
#
#   source .ci/postgres.sh      # start one; exports CRM_ANALYSIS_TEST_POSTGRES_URL and
#                               # stops the server when the sourcing shell exits
#   bash .ci/postgres.sh        # start one, print the URL and the command that stops it
#
# Installs Debian's `postgresql` when no server binaries are found (needs root), then
# initialises a fresh cluster in a new temporary folder (owned by the `postgres` user
# when run as root: initdb refuses root), listening only on 127.0.0.1 on the first free
# port from 54329, with trust authentication and a database `crm_test`. Safe to run
# again: a server started earlier by the same shell is stopped first.

CRM_PG_FIRST_PORT=${CRM_PG_FIRST_PORT:-54329}

crm_pg_log() { printf '[postgres] %s\n' "$*" >&2; }

# Folder of the newest installed server binaries (initdb, pg_ctl, postgres).
crm_pg_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
    printf '%s\n' "$dir"
  elif command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
  else
    return 1
  fi
}

# Run a command as the cluster's owner (the `postgres` user when we are root).
crm_pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

crm_pg_port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

crm_pg_stop() {
  if [ -n "${CRM_PG_DIR:-}" ] && [ -d "$CRM_PG_DIR" ]; then
    if [ -n "${CRM_PG_BINDIR:-}" ] && [ -f "$CRM_PG_DIR/data/postmaster.pid" ]; then
      crm_pg_as_owner "$CRM_PG_BINDIR/pg_ctl" -D "$CRM_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$CRM_PG_DIR"
  fi
  unset CRM_PG_DIR
  return 0
}

crm_pg_start() {
  local bindir dir port
  crm_pg_stop
  if ! bindir=$(crm_pg_bindir); then
    if [ "$(id -u)" -ne 0 ]; then
      crm_pg_log "no PostgreSQL server found; install Debian's postgresql package (needs root)"
      return 1
    fi
    crm_pg_log "installing PostgreSQL from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2 || return 1
    bindir=$(crm_pg_bindir) || { crm_pg_log "postgresql installed but initdb/pg_ctl not found"; return 1; }
  fi
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    crm_pg_log "running as root but there is no 'postgres' user to own the cluster"
    return 1
  fi

  port=$CRM_PG_FIRST_PORT
  while crm_pg_port_in_use "$port"; do
    port=$((port + 1))
    if [ "$port" -ge $((CRM_PG_FIRST_PORT + 100)) ]; then
      crm_pg_log "no free port in $CRM_PG_FIRST_PORT..$port"
      return 1
    fi
  done

  dir=$(mktemp -d "${TMPDIR:-/tmp}/crm-pg.XXXXXX") || return 1
  chmod 700 "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  CRM_PG_DIR=$dir
  CRM_PG_BINDIR=$bindir

  if ! crm_pg_as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C -N \
      >"$dir/initdb.log" 2>&1; then
    crm_pg_log "initdb failed:"; cat "$dir/initdb.log" >&2; crm_pg_stop; return 1
  fi
  if ! crm_pg_as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null 2>&1; then
    crm_pg_log "the server did not start:"; cat "$dir/server.log" >&2; crm_pg_stop; return 1
  fi
  if ! "$bindir/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
      -c "CREATE DATABASE crm_test" >/dev/null; then
    crm_pg_log "could not create database crm_test"; crm_pg_stop; return 1
  fi

  export CRM_ANALYSIS_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/crm_test"
  crm_pg_log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $dir)"
  echo "CRM_ANALYSIS_TEST_POSTGRES_URL=$CRM_ANALYSIS_TEST_POSTGRES_URL"
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  # Sourced: start, and stop when the sourcing shell exits.
  crm_pg_start || return 1
  trap crm_pg_stop EXIT
else
  set -euo pipefail
  crm_pg_start
  echo "export CRM_ANALYSIS_TEST_POSTGRES_URL=$CRM_ANALYSIS_TEST_POSTGRES_URL"
  echo "# stop it with: $( [ "$(id -u)" -eq 0 ] && printf 'runuser -u postgres -- ')$CRM_PG_BINDIR/pg_ctl -D $CRM_PG_DIR/data stop && rm -rf $CRM_PG_DIR"
fi
