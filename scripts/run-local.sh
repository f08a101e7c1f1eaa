#!/usr/bin/env bash
# `make run`: the e-Box sandbox, the daemon and a worker on embedded SQLite (./var) and a local
# RabbitMQ, in the foreground until Ctrl-C; then everything it started is stopped.
# Every seeded e-Box of the sandbox is onboarded, then messages, documents and payment requests
# arrive within seconds, summarised on the terminal.
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
sandbox_eboxes() {  # "number<TAB>name" of each seeded e-Box, once the sandbox answers
    .venv/bin/python - <<'PY'
import json, sys, time, urllib.request
for _ in range(100):
    try:
        with urllib.request.urlopen("http://127.0.0.1:8790/_sandbox", timeout=2) as response:
            for ebox in json.load(response)["enterprises"]:
                print(f"{ebox['enterpriseNumber']}\t{ebox['name']}")
            break
    except OSError:
        time.sleep(0.2)
else:
    sys.exit("the sandbox did not start")
PY
}

# Onboard the sandbox's e-Boxes as an operator would: certificate, registration (ChaMan's part,
# played by the sandbox), connection. Again after a restart: the sandbox forgets its clients.
while IFS=$'\t' read -r number name; do
    $eboxd enterprise show "$number" >/dev/null 2>&1 || $eboxd enterprise add "$number" --name "$name"
    $eboxd enterprise certificate "$number" -o "var/cert-$number.pem" 2>/dev/null
    client_id=$($eboxd sandbox register-client --enterprise "$number" --certificate "var/cert-$number.pem")
    $eboxd enterprise connect "$number" --client-id "$client_id"
done < <(sandbox_eboxes)
$eboxd poll --all >/dev/null

$eboxd worker --processes 1 --threads 4 2> var/worker.log & pids+=($!)
$eboxd serve 2> var/serve.log & pids+=($!)
cat >&2 <<EOT
eboxd is running (logs in var/serve.log and var/worker.log); metrics on http://127.0.0.1:9187/metrics,
sandbox on http://127.0.0.1:8790. Try: .venv/bin/eboxd messages list --to-pay. Ctrl-C stops it.
EOT
$eboxd status --watch 3 & pids+=($!)
wait -n "${pids[@]}"
