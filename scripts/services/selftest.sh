#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# End-to-end check of rabbitmq.sh and postgres.sh, run ROUNDS times (default 2):
# start both (twice: idempotence), talk to them (pika: durable queue +
# persistent message; psycopg: select 1 over TCP and the unix socket),
# pause/resume RabbitMQ and check the message survived, stop both (twice),
# and check nothing is left listening or running.
#
#   scripts/services/selftest.sh [ROUNDS]
#
# Uses the same env variables as the scripts. Refuses to run if either server
# is already running (its `stop` would kill someone's servers).
set -euo pipefail

SVC_NAME=selftest.sh
# shellcheck source=_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

HERE="$EBOXD_REPO/scripts/services"
ROUNDS="${1:-2}"
PY="$EBOXD_REPO/.venv/bin/python"
[[ -x $PY ]] || PY=python3
RMQ_PORT="${EBOXD_RABBITMQ_PORT:-5679}"
PG_PORT="${EBOXD_POSTGRES_PORT:-5433}"
QUEUE="eboxd-selftest-$$"

"$PY" -c 'import pika, psycopg' 2>/dev/null || die "$PY lacks pika and/or psycopg"
if "$HERE/rabbitmq.sh" status >/dev/null 2>&1 || "$HERE/postgres.sh" status >/dev/null 2>&1; then
    die "a server is already running from $EBOXD_SERVICES_BASE; stop it first"
fi

# timed LABEL CMD... - run CMD, print its wall time, keep its stdout in OUT.
declare -a TIMINGS=()
timed() {
    local label=$1 t0 t1
    shift
    t0=$(now_ms)
    OUT=$("$@")
    t1=$(now_ms)
    TIMINGS+=("$(printf '%-22s %6d ms' "$label" "$((t1 - t0))")")
}

amqp() {
    "$PY" - "$1" "$2" "$QUEUE" <<'PY'
import sys, pika
url, mode, queue = sys.argv[1:4]
conn = pika.BlockingConnection(pika.URLParameters(url))
ch = conn.channel()
ch.queue_declare(queue, durable=True)
if mode == "publish":
    ch.confirm_delivery()
    ch.basic_publish("", queue, b"survives-restart",
                     pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent))
else:
    _, _, body = ch.basic_get(queue, auto_ack=True)
    assert body == b"survives-restart", f"expected the durable message, got {body!r}"
    ch.queue_delete(queue)
conn.close()
print(f"amqp {mode}: ok")
PY
}

sql() {
    "$PY" - "$1" "$EBOXD_SERVICES_BASE/postgres" "$PG_PORT" <<'PY'
import sys, psycopg
url, sockdir, port = sys.argv[1:4]
with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as c:
    assert c.execute("select 1").fetchone() == (1,)
with psycopg.connect(host=sockdir, port=port, user="test", dbname="postgres") as c:
    assert c.execute("select 1").fetchone() == (1,)
print("sql select 1 (tcp + unix socket): ok")
PY
}

check_clean() {
    local epmd_pid=$1 leftovers
    tcp_open 127.0.0.1 "$RMQ_PORT" && die "something still listens on 127.0.0.1:$RMQ_PORT"
    tcp_open 127.0.0.1 "$PG_PORT" && die "something still listens on 127.0.0.1:$PG_PORT"
    tcp_open 127.0.0.1 "$((RMQ_PORT + 20000))" && die "something still listens on the dist port"
    tcp_open 127.0.0.1 "$((RMQ_PORT + 10000))" && die "something still listens on the epmd port"
    if [[ -n $epmd_pid ]] && pid_alive "$epmd_pid"; then
        die "epmd (pid $epmd_pid) started by rabbitmq.sh is still running"
    fi
    leftovers=$(pgrep -af -- "$EBOXD_SERVICES_BASE/" || true)
    [[ -z $leftovers ]] || die "processes still running: $leftovers"
    [[ ! -e $EBOXD_SERVICES_BASE/rabbitmq && ! -e $EBOXD_SERVICES_BASE/postgres ]] ||
        die "state dirs not removed under $EBOXD_SERVICES_BASE"
    log "clean: ports $RMQ_PORT, $PG_PORT, $((RMQ_PORT + 20000)), $((RMQ_PORT + 10000)) closed; no leftover processes or state"
}

for ((round = 1; round <= ROUNDS; round++)); do
    log "===== round $round/$ROUNDS ====="
    timed "rabbitmq start" "$HERE/rabbitmq.sh" start
    amqp_url=$OUT
    timed "rabbitmq start (again)" "$HERE/rabbitmq.sh" start
    [[ $OUT == "$amqp_url" ]] || die "second start printed '$OUT', not '$amqp_url'"
    timed "postgres start" "$HERE/postgres.sh" start
    pg_url=$OUT
    timed "postgres start (again)" "$HERE/postgres.sh" start
    [[ $OUT == "$pg_url" ]] || die "second start printed '$OUT', not '$pg_url'"

    # shellcheck source=env.sh
    . "$HERE/env.sh"
    [[ $amqp_url == "$EBOXD_TEST_AMQP_URL" ]] || die "env.sh AMQP URL $EBOXD_TEST_AMQP_URL != $amqp_url"
    [[ $pg_url == "$EBOXD_TEST_DATABASE_URL_PG" ]] || die "env.sh PG URL $EBOXD_TEST_DATABASE_URL_PG != $pg_url"

    "$HERE/rabbitmq.sh" status >/dev/null || die "rabbitmq status should be 0 while running"
    "$HERE/postgres.sh" status >/dev/null || die "postgres status should be 0 while running"
    sql "$pg_url"
    amqp "$amqp_url" publish

    epmd_pid=$(read_pid "$EBOXD_SERVICES_BASE/rabbitmq/epmd.pid")
    timed "rabbitmq pause" "$HERE/rabbitmq.sh" pause
    rc=0
    "$HERE/rabbitmq.sh" status >/dev/null 2>&1 || rc=$?
    [[ $rc -eq 3 ]] || die "rabbitmq status should be 3 while paused, got $rc"
    tcp_open 127.0.0.1 "$RMQ_PORT" && die "port $RMQ_PORT still open while paused"
    timed "rabbitmq pause (again)" "$HERE/rabbitmq.sh" pause
    timed "rabbitmq resume" "$HERE/rabbitmq.sh" resume
    [[ $OUT == "$amqp_url" ]] || die "resume printed '$OUT', not '$amqp_url'"
    amqp "$amqp_url" consume

    timed "rabbitmq stop" "$HERE/rabbitmq.sh" stop
    timed "rabbitmq stop (again)" "$HERE/rabbitmq.sh" stop
    timed "postgres stop" "$HERE/postgres.sh" stop
    timed "postgres stop (again)" "$HERE/postgres.sh" stop
    rc=0
    "$HERE/rabbitmq.sh" resume >/dev/null 2>&1 || rc=$?
    [[ $rc -ne 0 ]] || die "resume after stop should fail"
    check_clean "$epmd_pid"
done

log "timings:"
printf '  %s\n' "${TIMINGS[@]}" >&2
log "all $ROUNDS rounds passed"
