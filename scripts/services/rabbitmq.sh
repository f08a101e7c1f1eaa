#!/usr/bin/env bash
# Throwaway RabbitMQ node for tests and `make run` (Debian rabbitmq-server).
#
#   rabbitmq.sh start    install if needed, start a fresh node, wait until it
#                        accepts AMQP, print its URL on stdout (no-op if running)
#   rabbitmq.sh stop     stop the node and its epmd, delete the state dir
#                        (succeeds if nothing runs)
#   rabbitmq.sh status   exit 0 and print the URL if running, else exit 3
#   rabbitmq.sh pause    stop the node but keep its state (durable queues and
#                        persistent messages survive)
#   rabbitmq.sh resume   start the paused node again: same state dir, same port
#
# Environment:
#   EBOXD_SERVICES_DIR            base state dir (default: <repo>/.services);
#                                 this node uses $EBOXD_SERVICES_DIR/rabbitmq
#   EBOXD_RABBITMQ_PORT           AMQP port on 127.0.0.1 (default 5679)
#   EBOXD_RABBITMQ_DIST_PORT      Erlang distribution port (default port+20000)
#   EBOXD_RABBITMQ_EPMD_PORT      port of this node's own epmd (default
#                                 port+10000), so it never shares (or kills)
#                                 the system's epmd on 4369
#   EBOXD_RABBITMQ_NODENAME       default eboxd-test-<port>@localhost
#   EBOXD_RABBITMQ_CONSUMER_TIMEOUT  consumer_timeout in ms (default: broker's)
#   EBOXD_RABBITMQ_TIMEOUT        seconds to wait for start/stop (default 60)
#
# Works as root: the node is run via /usr/lib/rabbitmq/bin (the /usr/sbin
# wrappers switch to user rabbitmq), with HOME=<state dir> for the cookie.
# $STATE/env.sh holds every variable the server and the CLI tools need.
set -euo pipefail

SVC_NAME=rabbitmq.sh
# shellcheck source-path=SCRIPTDIR source=_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

RMQ_BIN=/usr/lib/rabbitmq/bin
STATE="$EBOXD_SERVICES_BASE/rabbitmq"
TIMEOUT="${EBOXD_RABBITMQ_TIMEOUT:-60}"
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "EBOXD_RABBITMQ_TIMEOUT must be a number of seconds, got '$TIMEOUT'"

PORT="${EBOXD_RABBITMQ_PORT:-5679}"
check_port EBOXD_RABBITMQ_PORT "$PORT"

usage() {
    printf 'usage: %s start|stop|status|pause|resume\n' "$0" >&2
    exit 2
}

# ---------------------------------------------------------------- state ----

EPMD_PORT=''

# If a node was started from $STATE, its env.sh is the source of truth for
# the ports (stop/status/pause/resume must not depend on the caller's env).
load_state_env() {
    if [[ -r $STATE/env.sh ]]; then
        read -r PORT EPMD_PORT < <(
            # shellcheck source=/dev/null
            . "$STATE/env.sh"
            printf '%s %s\n' "${RABBITMQ_NODE_PORT:-$PORT}" "${ERL_EPMD_PORT:-}"
        )
    fi
    URL="amqp://guest:guest@127.0.0.1:$PORT/"
}

server_logs() {
    local -a logs=("$STATE/log/startup.log")
    local f
    for f in "$STATE"/log/*.log; do
        [[ -e $f && $f != "$STATE/log/startup.log" ]] && logs+=("$f")
    done
    printf '%s\n' "${logs[@]}"
}

fail() {
    local -a logs
    mapfile -t logs < <(server_logs)
    die "$1" "${logs[@]}"
}

# Compute and validate the ports and node name for a fresh start (sets
# PORT, DIST_PORT, EPMD_PORT, NODE) before anything is deleted.
plan_node() {
    PORT="${EBOXD_RABBITMQ_PORT:-5679}"
    local dist_port node
    dist_port="${EBOXD_RABBITMQ_DIST_PORT:-$((10#$PORT + 20000))}"
    check_port "EBOXD_RABBITMQ_DIST_PORT (default: EBOXD_RABBITMQ_PORT+20000)" "$dist_port"
    if ((dist_port >= 35672 && dist_port <= 35682)); then
        die "distribution port $dist_port is in 35672-35682, which the CLI tools use; set EBOXD_RABBITMQ_DIST_PORT"
    fi
    EPMD_PORT="${EBOXD_RABBITMQ_EPMD_PORT:-$((10#$PORT + 10000))}"
    check_port "EBOXD_RABBITMQ_EPMD_PORT (default: EBOXD_RABBITMQ_PORT+10000)" "$EPMD_PORT"
    if ((10#$EPMD_PORT == 10#$PORT || 10#$EPMD_PORT == 10#$dist_port || 10#$dist_port == 10#$PORT)); then
        die "AMQP ($PORT), distribution ($dist_port) and epmd ($EPMD_PORT) ports must differ"
    fi
    node="${EBOXD_RABBITMQ_NODENAME:-eboxd-test-$PORT@localhost}"
    if [[ -n ${EBOXD_RABBITMQ_CONSUMER_TIMEOUT:-} && ! $EBOXD_RABBITMQ_CONSUMER_TIMEOUT =~ ^[0-9]+$ ]]; then
        die "EBOXD_RABBITMQ_CONSUMER_TIMEOUT must be milliseconds (an integer), got '$EBOXD_RABBITMQ_CONSUMER_TIMEOUT'"
    fi
    DIST_PORT=$dist_port
    NODE=$node
    if tcp_open 127.0.0.1 "$PORT"; then
        die "127.0.0.1:$PORT is already in use by another process (set EBOXD_RABBITMQ_PORT)"
    fi
}

write_state() {
    local dist_port=$DIST_PORT node=$NODE
    rm -rf -- "$STATE"
    mkdir -p -- "$STATE/mnesia" "$STATE/log"
    chmod 700 "$STATE"
    echo '[].' >"$STATE/enabled_plugins" # no management plugin, no others
    {
        echo 'loopback_users = none'
        echo 'listeners.tcp.default = 127.0.0.1:'"$PORT"
        if [[ -n ${EBOXD_RABBITMQ_CONSUMER_TIMEOUT:-} ]]; then
            echo "consumer_timeout = $EBOXD_RABBITMQ_CONSUMER_TIMEOUT"
        fi
    } >"$STATE/rabbitmq.conf"
    : >"$STATE/rabbitmq-env.conf" # shadow /etc/rabbitmq/rabbitmq-env.conf

    local -a vars=(
        HOME="$STATE"
        LANG=C.UTF-8
        LC_ALL=C.UTF-8
        RABBITMQ_NODENAME="$node"
        RABBITMQ_USE_LONGNAME=false
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
        RABBITMQ_NODE_PORT="$PORT"
        RABBITMQ_DIST_PORT="$dist_port"
        ERL_EPMD_ADDRESS=127.0.0.1
        ERL_EPMD_PORT="$EPMD_PORT"
        RABBITMQ_MNESIA_BASE="$STATE/mnesia"
        RABBITMQ_LOG_BASE="$STATE/log"
        RABBITMQ_PID_FILE="$STATE/rabbitmq.pid"
        ERL_CRASH_DUMP="$STATE/log/erl_crash.dump"
        RABBITMQ_CONFIG_FILE="$STATE/rabbitmq"
        RABBITMQ_ADVANCED_CONFIG_FILE="$STATE/advanced.config"
        RABBITMQ_ENABLED_PLUGINS_FILE="$STATE/enabled_plugins"
        RABBITMQ_CONF_ENV_FILE="$STATE/rabbitmq-env.conf"
        # Bind the Erlang distribution listeners (node and CLI) to loopback.
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
        RABBITMQ_CTL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
    )
    {
        echo "# generated by $0; sourced by rabbitmq.sh for the server and CLI tools"
        local kv
        for kv in "${vars[@]}"; do
            printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
        done
    } >"$STATE/env.sh"
}

# Run a RabbitMQ tool (rabbitmq-server, rabbitmqctl, ...) with the node's env.
# fd 9 (the lock) is closed so that long-lived children do not hold it.
rmq() {
    (
        # shellcheck source=/dev/null
        . "$STATE/env.sh"
        exec "$RMQ_BIN/$1" "${@:2}" 9>&-
    )
}

# PID of the node: from the pid file, or (before the node has written it, or
# if it was deleted) the beam.smp whose command line has `-home $STATE`.
node_pid() {
    local pid
    pid=$(read_pid "$STATE/rabbitmq.pid")
    if [[ -z $pid ]]; then
        for pid in $(pgrep -f -- "beam.smp .* -home $STATE( |$)" || true); do
            pid_alive "$pid" && break
            pid=''
        done
    fi
    [[ -n $pid ]] && printf '%s\n' "$pid"
    return 0
}

node_running() {
    local pid
    pid=$(node_pid)
    [[ -n $pid ]] && pid_alive "$pid"
}

# True once the broker answers an AMQP 0-9-1 protocol header with a method
# frame (Connection.Start) - i.e. it really accepts AMQP clients. Much
# cheaper than a CLI call (each of those boots an Erlang VM, ~1 s).
amqp_ready() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
        printf 'AMQP\0\0\x09\x01' >&3
        IFS= read -r -t 2 -N 1 -u 3 b || exit 1
        [[ $b == $'\x01' ]]
    ) 2>/dev/null
}

# ----------------------------------------------------------------- epmd ----

# Each node gets its own loopback-only epmd on a private port (ERL_EPMD_PORT
# in env.sh, honoured by the server and the CLI tools). Its PID is recorded
# so `stop` kills exactly that epmd and nothing else.
ensure_epmd() {
    local i pid=''
    if tcp_open 127.0.0.1 "$EPMD_PORT"; then
        return 0 # ours, still up from before a pause
    fi
    epmd -port "$EPMD_PORT" -address 127.0.0.1 -daemon 9>&- ||
        die "could not start epmd on 127.0.0.1:$EPMD_PORT"
    for ((i = 0; i < 100; i++)); do
        tcp_open 127.0.0.1 "$EPMD_PORT" && break
        sleep 0.05
    done
    for pid in $(pgrep -xf "epmd -port $EPMD_PORT -address 127.0.0.1 -daemon" || true); do
        pid_alive "$pid" && echo "$pid" >"$STATE/epmd.pid"
    done
    tcp_open 127.0.0.1 "$EPMD_PORT" || die "epmd did not come up on 127.0.0.1:$EPMD_PORT"
}

stop_own_epmd() {
    local pid i
    pid=$(read_pid "$STATE/epmd.pid")
    rm -f -- "$STATE/epmd.pid"
    [[ -n $pid ]] && pid_alive "$pid" || return 0
    [[ $(ps -o comm= -p "$pid" 2>/dev/null) == epmd ]] || return 0
    # Paranoia: never pull epmd from under a node that is still registered.
    if [[ -n $EPMD_PORT ]] && epmd -port "$EPMD_PORT" -names 2>/dev/null | grep -q '^name '; then
        log "leaving epmd (pid $pid) running: an Erlang node is still registered with it"
        return 0
    fi
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# --------------------------------------------------------------- server ----

ensure_installed() {
    if ! pkg_installed rabbitmq-server || [[ ! -x $RMQ_BIN/rabbitmq-server ]]; then
        apt_install rabbitmq-server
    fi
    [[ -x $RMQ_BIN/rabbitmq-server ]] || die "$RMQ_BIN/rabbitmq-server missing after installing rabbitmq-server"
}

# `-detached` discards the VM's stdout, where errors before logging is set up
# (e.g. a bad rabbitmq.conf) go. If the node died without logging anything,
# boot it once more in the foreground (bounded) to capture that output.
capture_boot_error() {
    local f
    for f in "$STATE"/log/*.log; do
        [[ $f != "$STATE/log/startup.log" && -s $f ]] && return 0
    done
    log "node died before logging anything; re-running it in the foreground to capture the error"
    echo "---- foreground re-run ----" >>"$STATE/log/startup.log"
    (cd "$STATE" && timeout -k 5 30 "$0" __foreground) </dev/null >>"$STATE/log/startup.log" 2>&1 || true
}

# Launch the node from the existing $STATE and wait until it serves AMQP.
launch() {
    local t0=$1 deadline pid=''
    if tcp_open 127.0.0.1 "$PORT"; then
        die "127.0.0.1:$PORT is already in use by another process (set EBOXD_RABBITMQ_PORT)"
    fi
    ensure_epmd
    rm -f -- "$STATE/rabbitmq.pid"
    if ! rmq rabbitmq-server -detached >"$STATE/log/startup.log" 2>&1; then
        fail "rabbitmq-server -detached failed"
    fi
    deadline=$((SECONDS + TIMEOUT))
    while ! amqp_ready; do
        [[ -n $pid ]] || pid=$(node_pid)
        if [[ -n $pid ]] && ! pid_alive "$pid"; then
            capture_boot_error
            fail "the RabbitMQ node (pid $pid) exited during startup"
        fi
        if ((SECONDS >= deadline)); then
            fail "RabbitMQ did not accept AMQP on 127.0.0.1:$PORT within ${TIMEOUT}s"
        fi
        sleep 0.1
    done
    # The AMQP listener opens at the end of boot; confirm boot completed.
    if ! rmq rabbitmqctl -q --timeout "$TIMEOUT" await_startup >>"$STATE/log/startup.log" 2>&1; then
        fail "rabbitmqctl await_startup failed"
    fi
    log "ready on 127.0.0.1:$PORT (pid $(node_pid)) in $(($(now_ms) - t0)) ms"
}

# Stop the node (graceful; SIGKILL only after the timeout). Keeps $STATE.
stop_node() {
    local pid deadline
    pid=$(node_pid)
    [[ -n $pid ]] && pid_alive "$pid" || return 0
    # SIGTERM makes RabbitMQ (>= 3.8) shut down gracefully, like
    # `rabbitmqctl stop`, without booting a CLI VM first.
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + TIMEOUT))
    while pid_alive "$pid"; do
        if ((SECONDS >= deadline)); then
            log "node (pid $pid) still running after ${TIMEOUT}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.05
    done
    rm -f -- "$STATE/rabbitmq.pid"
}

# ------------------------------------------------------------- commands ----

cmd_start() {
    local t0
    t0=$(now_ms)
    ensure_installed
    load_state_env
    if node_running; then
        if amqp_ready; then
            log "already running on 127.0.0.1:$PORT (pid $(node_pid))"
        else
            log "node (pid $(node_pid)) is running but not ready yet; waiting"
            local deadline=$((SECONDS + TIMEOUT))
            until amqp_ready; do
                ((SECONDS < deadline)) || fail "RabbitMQ did not become ready within ${TIMEOUT}s"
                node_running || fail "the RabbitMQ node exited during startup"
                sleep 0.1
            done
        fi
        printf '%s\n' "$URL"
        return 0
    fi
    # Not running: throw away any leftover (or paused) state and start fresh.
    if [[ -e $STATE ]]; then
        log "discarding old state in $STATE"
        stop_node
        stop_own_epmd
    fi
    plan_node
    write_state
    load_state_env
    launch "$t0"
    printf '%s\n' "$URL"
}

cmd_resume() {
    local t0
    t0=$(now_ms)
    [[ -r $STATE/env.sh ]] || die "nothing to resume: no state in $STATE (use start)"
    load_state_env
    if node_running; then
        log "already running on 127.0.0.1:$PORT (pid $(node_pid))"
    else
        launch "$t0"
    fi
    printf '%s\n' "$URL"
}

cmd_pause() {
    local t0
    t0=$(now_ms)
    [[ -r $STATE/env.sh ]] || die "nothing to pause: no state in $STATE (use start)"
    load_state_env
    if ! node_running; then
        log "not running (already paused); state kept in $STATE"
        return 0
    fi
    stop_node
    log "paused in $(($(now_ms) - t0)) ms; state kept in $STATE"
}

cmd_stop() {
    local t0
    t0=$(now_ms)
    if [[ ! -e $STATE ]]; then
        log "not running (no state in $STATE)"
        return 0
    fi
    load_state_env
    stop_node
    stop_own_epmd
    rm -rf -- "$STATE"
    log "stopped and removed $STATE in $(($(now_ms) - t0)) ms"
}

cmd_status() {
    load_state_env
    if node_running && amqp_ready; then
        log "running on 127.0.0.1:$PORT (pid $(node_pid))"
        printf '%s\n' "$URL"
        return 0
    fi
    if node_running; then
        log "starting (pid $(node_pid)), not accepting AMQP yet"
    elif [[ -r $STATE/env.sh ]]; then
        log "not running (paused; state in $STATE)"
    else
        log "not running"
    fi
    return 3
}

[[ $# -eq 1 ]] || usage
# Serialise start/stop/pause/resume of this node (parallel test workers may
# call `start` at the same time). The lock file lives outside $STATE.
if [[ $1 != status && $1 != __foreground ]]; then
    mkdir -p -- "$EBOXD_SERVICES_BASE"
    exec 9>>"$EBOXD_SERVICES_BASE/.rabbitmq.lock"
    flock -w "$((2 * TIMEOUT + 10))" 9 || die "timed out waiting for $EBOXD_SERVICES_BASE/.rabbitmq.lock"
fi
case $1 in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
__foreground) exec 9>&- && rmq rabbitmq-server ;; # internal: capture_boot_error
pause) cmd_pause ;;
resume) cmd_resume ;;
*) usage ;;
esac
