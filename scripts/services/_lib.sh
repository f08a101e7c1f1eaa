# shellcheck shell=bash
# Shared helpers for scripts/services/*.sh. Sourced, not executed.
# The caller has already done `set -euo pipefail`.

# Repository root, computed from this file's location (scripts/services/..).
EBOXD_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
# shellcheck disable=SC2034  # used by the scripts sourcing this file
EBOXD_SERVICES_BASE="${EBOXD_SERVICES_DIR:-$EBOXD_REPO/.services}"

# Name used as the prefix of every message; set by the caller.
: "${SVC_NAME:=services}"

log() { printf '%s: %s\n' "$SVC_NAME" "$*" >&2; }

# die MESSAGE [LOGFILE...] - print an error (plus each existing log file:
# whole if short, else its head, where boot errors are, and its tail) on
# stderr and exit 1.
die() {
    local msg=$1 f n
    shift
    printf '%s: ERROR: %s\n' "$SVC_NAME" "$msg" >&2
    for f in "$@"; do
        [[ -s $f ]] || continue
        n=$(wc -l <"$f")
        printf '%s: ---- %s (%s lines) ----\n' "$SVC_NAME" "$f" "$n" >&2
        if ((n <= 60)); then
            cat -- "$f" >&2
        else
            head -n 20 -- "$f" >&2
            printf '%s: [... %s lines ...]\n' "$SVC_NAME" "$((n - 50))" >&2
            tail -n 30 -- "$f" >&2
        fi
        printf '%s: ---- end of %s ----\n' "$SVC_NAME" "$f" >&2
    done
    exit 1
}

# Monotonic-ish milliseconds, for timing messages.
now_ms() { local t; t=$(date +%s%N); printf '%s\n' "$((t / 1000000))"; }

# pid_alive PID - true if PID is a live, non-zombie process.
pid_alive() {
    local pid=${1:-} state
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    state=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
    [[ -n $state && $state != Z* ]]
}

# read_pid FILE - print the PID stored in FILE (empty if none).
read_pid() {
    local f=$1 pid=''
    if [[ -r $f ]]; then read -r pid <"$f" 2>/dev/null || true; fi
    [[ $pid =~ ^[0-9]+$ ]] && printf '%s\n' "$pid"
    return 0
}

# tcp_open HOST PORT - true if something accepts TCP connections there.
tcp_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# check_port NAME VALUE - validate a TCP port number.
check_port() {
    if ! [[ $2 =~ ^[0-9]+$ ]] || ((10#$2 < 1 || 10#$2 > 65535)); then
        die "$1 must be a TCP port number (1-65535), got '$2'"
    fi
}

# apt_install PACKAGE... - non-interactive, quiet install that waits for the
# dpkg lock (another apt may be running) instead of failing on it.
apt_install() {
    [[ $(id -u) -eq 0 ]] ||
        die "packages '$*' are missing and installing them needs root (run: sudo apt-get install $*)"
    command -v apt-get >/dev/null || die "packages '$*' are missing and apt-get is not available"
    local -a apt=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3 -y -qq)
    local aptlog
    aptlog=$(mktemp "${TMPDIR:-/tmp}/eboxd-apt.XXXXXX")
    log "installing $* with apt-get (log: $aptlog; waits up to 600 s for the dpkg lock)"
    if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends --no-upgrade "$@" >"$aptlog" 2>&1; then
        log "apt-get install failed; running apt-get update and retrying"
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" update >>"$aptlog" 2>&1 ||
            die "apt-get update failed" "$aptlog"
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends --no-upgrade "$@" >>"$aptlog" 2>&1 ||
            die "apt-get install $* failed" "$aptlog"
    fi
    rm -f -- "$aptlog"
}

# pkg_installed PACKAGE - true if dpkg says it is fully installed (not merely
# unpacked by an apt run still in progress).
pkg_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}
