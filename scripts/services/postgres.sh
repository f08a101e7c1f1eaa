#!/usr/bin/env bash
# Throwaway PostgreSQL server for tests and `make run` (Debian postgresql).
#
#   postgres.sh start    install if needed, initdb a fresh cluster, start it,
#                        print the SQLAlchemy URL on stdout (no-op if running)
#   postgres.sh stop     stop the server, delete the state dir (succeeds if
#                        nothing runs)
#   postgres.sh status   exit 0 and print the URL if running, else exit 3
#   postgres.sh pause    stop the server (fast shutdown: clients are
#                        disconnected) but keep its data directory
#   postgres.sh resume   start the paused server again: same data, same port
#
# Environment:
#   EBOXD_SERVICES_DIR     base state dir (default: <repo>/.services);
#                          this server uses $EBOXD_SERVICES_DIR/postgres
#   EBOXD_POSTGRES_PORT    TCP port on 127.0.0.1 (default 5433); the unix
#                          socket is <state dir>/.s.PGSQL.<port>
#   EBOXD_POSTGRES_TIMEOUT seconds to wait for start/stop (default 60)
#
# Superuser `test`, trust auth, fsync off: for throwaway data only.
# initdb/postgres refuse to run as root, so as root the cluster is owned by
# and run as user `postgres` (via runuser).
set -euo pipefail

SVC_NAME=postgres.sh
# shellcheck source-path=SCRIPTDIR source=_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

STATE="$EBOXD_SERVICES_BASE/postgres"
DATA="$STATE/data"
LOGFILE="$STATE/postgres.log"
TIMEOUT="${EBOXD_POSTGRES_TIMEOUT:-60}"
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "EBOXD_POSTGRES_TIMEOUT must be a number of seconds, got '$TIMEOUT'"

PORT="${EBOXD_POSTGRES_PORT:-5433}"
check_port EBOXD_POSTGRES_PORT "$PORT"

usage() {
    printf 'usage: %s start|stop|status|pause|resume\n' "$0" >&2
    exit 2
}

# A running cluster's port (recorded at start) wins over the caller's env.
load_state_port() {
    local p=''
    if [[ -r $STATE/port ]]; then read -r p <"$STATE/port" || true; fi
    [[ $p =~ ^[0-9]+$ ]] && PORT=$p
    set_url
}

set_url() { URL="postgresql+psycopg://test@127.0.0.1:$PORT/postgres"; }

# Highest installed /usr/lib/postgresql/<ver>/bin with an initdb.
find_pg_bin() {
    local d best=''
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/initdb && -x $d/pg_ctl ]] || continue
        if [[ -z $best ]] || [[ $(printf '%s\n%s\n' "$best" "$d" | sort -V | tail -n 1) == "$d" ]]; then
            best=$d
        fi
    done
    printf '%s\n' "$best"
}

ensure_installed() {
    PG_BIN=$(find_pg_bin)
    if [[ -z $PG_BIN ]]; then
        apt_install postgresql
        PG_BIN=$(find_pg_bin)
        [[ -n $PG_BIN ]] || die "no /usr/lib/postgresql/*/bin/initdb after installing postgresql"
    fi
}

# Run a PostgreSQL binary as the cluster owner (user postgres when root).
# fd 9 (the lock) is closed so that the server does not hold it.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@" 9>&-)
    else
        "$@" 9>&-
    fi
}

pg_ctl_() { as_owner "$PG_BIN/pg_ctl" -D "$DATA" "$@"; }

running() {
    [[ -f $DATA/PG_VERSION ]] || return 1
    [[ -n ${PG_BIN:-} ]] || PG_BIN=$(find_pg_bin)
    [[ -n $PG_BIN ]] || return 1
    pg_ctl_ status >/dev/null 2>&1
}

postmaster_pid() {
    local pid=''
    if [[ -r $DATA/postmaster.pid ]]; then read -r pid <"$DATA/postmaster.pid" || true; fi
    [[ $pid =~ ^[0-9]+$ ]] && printf '%s\n' "$pid"
    return 0
}

# Escape a value for a single-quoted postgresql.conf string.
conf_quote() { printf "'%s'" "${1//\'/\'\'}"; }

cmd_start() {
    local t0
    t0=$(now_ms)
    ensure_installed
    load_state_port
    if running; then
        log "already running on 127.0.0.1:$PORT (pid $(postmaster_pid))"
        printf '%s\n' "$URL"
        return 0
    fi

    PORT="${EBOXD_POSTGRES_PORT:-5433}"
    set_url
    if tcp_open 127.0.0.1 "$PORT"; then
        die "127.0.0.1:$PORT is already in use by another process (set EBOXD_POSTGRES_PORT)"
    fi
    local sock="$STATE/.s.PGSQL.$PORT"
    if ((${#sock} > 100)); then
        die "unix socket path too long (${#sock} > 100 chars): $sock; set EBOXD_SERVICES_DIR to a shorter path"
    fi

    # Fresh cluster: throw away leftovers of a crashed or killed run.
    rm -rf -- "$STATE"
    mkdir -p -- "$STATE"
    chmod 700 "$STATE"
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "user 'postgres' does not exist (install Debian's postgresql package)"
        chown postgres: "$STATE"
        as_owner test -w "$STATE" ||
            die "user postgres cannot write $STATE (a parent directory is not traversable?); set EBOXD_SERVICES_DIR, e.g. to a dir under /tmp"
    fi
    echo "$PORT" >"$STATE/port"

    if ! as_owner "$PG_BIN/initdb" -D "$DATA" -A trust -U test -E UTF8 --locale=C.UTF-8 \
        --no-sync >"$STATE/initdb.log" 2>&1; then
        die "initdb failed ($PG_BIN/initdb)" "$STATE/initdb.log"
    fi
    {
        echo
        echo "# added by $0"
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $PORT"
        echo "unix_socket_directories = $(conf_quote "$STATE")"
        echo "fsync = off"
        echo "synchronous_commit = off"
        echo "full_page_writes = off"
    } >>"$DATA/postgresql.conf"

    if ! pg_ctl_ -l "$LOGFILE" -w -t "$TIMEOUT" start >"$STATE/pg_ctl.log" 2>&1; then
        die "pg_ctl start failed" "$STATE/pg_ctl.log" "$LOGFILE"
    fi
    tcp_open 127.0.0.1 "$PORT" || die "server started but 127.0.0.1:$PORT does not accept connections" "$LOGFILE"
    log "ready on 127.0.0.1:$PORT and $sock (pid $(postmaster_pid), $(basename "$(dirname "$PG_BIN")")) in $(($(now_ms) - t0)) ms"
    printf '%s\n' "$URL"
}

cmd_stop() {
    local t0 pid
    t0=$(now_ms)
    if [[ ! -e $STATE ]]; then
        log "not running (no state in $STATE)"
        return 0
    fi
    if running; then
        if ! pg_ctl_ -m fast -w -t "$TIMEOUT" stop >"$STATE/pg_ctl.log" 2>&1; then
            log "fast shutdown failed; trying immediate"
            pg_ctl_ -m immediate -w -t "$TIMEOUT" stop >>"$STATE/pg_ctl.log" 2>&1 || true
        fi
    fi
    pid=$(postmaster_pid)
    if [[ -n $pid ]] && pid_alive "$pid" && [[ $(ps -o comm= -p "$pid") == postgres ]]; then
        log "postmaster (pid $pid) still alive; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf -- "$STATE"
    log "stopped and removed $STATE in $(($(now_ms) - t0)) ms"
}

cmd_pause() {
    local t0
    t0=$(now_ms)
    [[ -f $DATA/PG_VERSION ]] || die "nothing to pause: no cluster in $DATA (use start)"
    ensure_installed
    load_state_port
    if ! running; then
        log "not running (already paused); data kept in $DATA"
        return 0
    fi
    if ! pg_ctl_ -m fast -w -t "$TIMEOUT" stop >"$STATE/pg_ctl.log" 2>&1; then
        die "pg_ctl stop failed" "$STATE/pg_ctl.log" "$LOGFILE"
    fi
    log "paused in $(($(now_ms) - t0)) ms; data kept in $DATA"
}

cmd_resume() {
    local t0
    t0=$(now_ms)
    [[ -f $DATA/PG_VERSION ]] || die "nothing to resume: no cluster in $DATA (use start)"
    ensure_installed
    load_state_port
    if running; then
        log "already running on 127.0.0.1:$PORT (pid $(postmaster_pid))"
    else
        if tcp_open 127.0.0.1 "$PORT"; then
            die "127.0.0.1:$PORT is already in use by another process; cannot resume"
        fi
        if ! pg_ctl_ -l "$LOGFILE" -w -t "$TIMEOUT" start >"$STATE/pg_ctl.log" 2>&1; then
            die "pg_ctl start failed" "$STATE/pg_ctl.log" "$LOGFILE"
        fi
        log "resumed on 127.0.0.1:$PORT (pid $(postmaster_pid)) in $(($(now_ms) - t0)) ms"
    fi
    printf '%s\n' "$URL"
}

cmd_status() {
    load_state_port
    if running; then
        log "running on 127.0.0.1:$PORT (pid $(postmaster_pid))"
        printf '%s\n' "$URL"
        return 0
    fi
    log "not running"
    return 3
}

[[ $# -eq 1 ]] || usage
# Serialise start/stop (parallel test workers may call `start` at the same
# time). The lock file lives outside $STATE.
if [[ $1 != status ]]; then
    mkdir -p -- "$EBOXD_SERVICES_BASE"
    exec 9>>"$EBOXD_SERVICES_BASE/.postgres.lock"
    flock -w "$((2 * TIMEOUT + 10))" 9 || die "timed out waiting for $EBOXD_SERVICES_BASE/.postgres.lock"
fi
case $1 in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
pause) cmd_pause ;;
resume) cmd_resume ;;
*) usage ;;
esac
