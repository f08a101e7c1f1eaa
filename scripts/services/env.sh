#!/usr/bin/env bash
# URLs of the throwaway servers started by rabbitmq.sh and postgres.sh, in
# one place for the Makefile and the tests.
#
#   . scripts/services/env.sh        # bash/sh: export the variables
#   scripts/services/env.sh          # print `export NAME=value` lines
#                                    # (valid sh, and a GNU Make include file)
#
# Values already in the environment win; the ports follow the same variables
# as the start scripts (EBOXD_RABBITMQ_PORT, EBOXD_POSTGRES_PORT).
#
# No `set -euo pipefail` when sourced: it would leak into the caller's shell.

if ! (return 0 2>/dev/null); then
    set -euo pipefail
fi

export EBOXD_TEST_AMQP_URL="${EBOXD_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:${EBOXD_RABBITMQ_PORT:-5679}/}"
export EBOXD_TEST_DATABASE_URL_PG="${EBOXD_TEST_DATABASE_URL_PG:-postgresql+psycopg://test@127.0.0.1:${EBOXD_POSTGRES_PORT:-5433}/postgres}"

if ! (return 0 2>/dev/null); then
    printf 'export EBOXD_TEST_AMQP_URL=%s\n' "$EBOXD_TEST_AMQP_URL"
    printf 'export EBOXD_TEST_DATABASE_URL_PG=%s\n' "$EBOXD_TEST_DATABASE_URL_PG"
fi
