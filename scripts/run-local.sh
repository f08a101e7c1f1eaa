#!/usr/bin/env bash
# `make run`: the daemon and a worker on embedded SQLite (./var) and a local RabbitMQ, in the
# foreground until Ctrl-C, then everything it started is stopped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export EBOXD_CONFIG="${EBOXD_CONFIG:-config/eboxd.local.toml}"
services=scripts/services
pids=()
cleanup() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    "$services/rabbitmq.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

"$services/rabbitmq.sh" start >/dev/null
.venv/bin/eboxd init
.venv/bin/eboxd worker --processes 1 --threads 2 & pids+=($!)
.venv/bin/eboxd serve & pids+=($!)
echo "eboxd is running: metrics on http://127.0.0.1:9187/metrics, Ctrl-C stops it" >&2
wait -n "${pids[@]}"
