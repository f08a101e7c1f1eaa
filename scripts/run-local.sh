#!/usr/bin/env bash
# `make run`: the e-Box sandbox, the daemon and a worker on embedded SQLite (./var) and a local
# RabbitMQ, in the foreground until Ctrl-C; then everything it started is stopped.
# The first seeded enterprise of the sandbox is onboarded as an operator would: certificate,
# registration (ChaMan's part, played by the sandbox), connection.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export EBOXD_CONFIG="${EBOXD_CONFIG:-config/eboxd.local.toml}"
eboxd=.venv/bin/eboxd
services=scripts/services
pids=()
cleanup() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    "$services/rabbitmq.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

EBOXD_BROKER__URL=$("$services/rabbitmq.sh" start)
export EBOXD_BROKER__URL
$eboxd init
$eboxd sandbox & pids+=($!)
first_ebox() {  # a field of the sandbox's first seeded e-Box, waiting for the sandbox to answer
    .venv/bin/python - "$1" <<'PY'
import json, sys, time, urllib.request
for _ in range(100):
    try:
        with urllib.request.urlopen("http://127.0.0.1:8790/_sandbox", timeout=2) as response:
            print(json.load(response)["enterprises"][0][sys.argv[1]])
            break
    except OSError:
        time.sleep(0.2)
else:
    sys.exit("the sandbox did not start")
PY
}

# Onboard the sandbox's first e-Box (again after a restart: the sandbox forgets its clients).
number=$(first_ebox enterpriseNumber)
name=$(first_ebox name)
$eboxd enterprise show "$number" >/dev/null 2>&1 || $eboxd enterprise add "$number" --name "$name"
$eboxd enterprise certificate "$number" -o var/cert.pem
client_id=$($eboxd sandbox register-client --enterprise "$number" --certificate var/cert.pem)
$eboxd enterprise connect "$number" --client-id "$client_id"

$eboxd worker --processes 1 --threads 2 & pids+=($!)
$eboxd serve & pids+=($!)
echo "eboxd is running: metrics on http://127.0.0.1:9187/metrics, sandbox on http://127.0.0.1:8790; Ctrl-C stops it" >&2
wait -n "${pids[@]}"
