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
# shellcheck source=services/env.sh
. "$services/env.sh"
export EBOXD_TEST_AMQP_URL EBOXD_TEST_DATABASE_URL_PG

.venv/bin/ruff check .
# pytest exits 5 when it collected nothing: that is a failure too, and set -e keeps it one.
.venv/bin/python -m pytest "$@"
