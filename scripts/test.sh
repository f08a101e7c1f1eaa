#!/usr/bin/env bash
# `make test`: start a throwaway RabbitMQ and PostgreSQL on loopback, run the whole suite (every
# database test on SQLite and on PostgreSQL), lint, and stop the services whatever happened.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

services=scripts/services
cleanup() {
    "$services/rabbitmq.sh" stop >/dev/null 2>&1 || echo "warning: could not stop RabbitMQ" >&2
    "$services/postgres.sh" stop >/dev/null 2>&1 || echo "warning: could not stop PostgreSQL" >&2
}
trap cleanup EXIT

"$services/rabbitmq.sh" start >/dev/null
"$services/postgres.sh" start >/dev/null
# tests/deploy: systemd-analyze (verify, security) checks the units; systemd need not be running.
command -v systemd-analyze >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends systemd; } >/dev/null
# tests/exporters/zip: every bundle must also pass Info-ZIP's `unzip -t` (and benchmarks/zip_export.py measures `zip`).
command -v unzip >/dev/null && command -v zip >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends zip unzip; } >/dev/null
# promtool checks and unit-tests deploy/prometheus/alerts.yml (tests/deploy): the static binary
# out of Debian's prometheus package (19 MB, about 2 s), into the venv. No server is installed.
if [[ ! -x .venv/bin/promtool ]]; then
    work=$(mktemp -d)
    (cd "$work" && { apt-get download -q prometheus || { apt-get update -q && apt-get download -q prometheus; }; }) \
        >/dev/null 2>&1 || { echo "cannot download Debian's prometheus package (for promtool)" >&2; exit 1; }
    dpkg-deb --fsys-tarfile "$work"/prometheus_*.deb | tar -xO ./usr/bin/promtool > .venv/bin/promtool.part
    chmod 0755 .venv/bin/promtool.part && mv .venv/bin/promtool.part .venv/bin/promtool
    rm -rf "$work"
fi
# shellcheck source=services/env.sh
. "$services/env.sh"
export EBOXD_TEST_AMQP_URL EBOXD_TEST_DATABASE_URL_PG

.venv/bin/ruff check .
# pytest exits 5 when it collected nothing: that is a failure too, and set -e keeps it one.
.venv/bin/python -m pytest "$@"
