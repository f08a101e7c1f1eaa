#!/usr/bin/env bash
# Install or upgrade eboxd under systemd on Debian, from this checkout:
#
#   /opt/eboxd/venv                    eboxd and its exporter plugins in a virtual environment
#   /opt/eboxd/share/                  docs/operations.md, docs/metrics.md, Prometheus alerts, Grafana dashboard
#   /usr/local/bin/eboxd               the CLI, run as the service user
#   /etc/eboxd/eboxd.toml              configuration (kept if present; 0640 root:eboxd)
#   /etc/eboxd/master.key              master key for secrets at rest (created once; 0640 root:eboxd)
#   /etc/systemd/system/               eboxd.target, eboxd.service, eboxd-worker@.service, eboxd-migrate.service,
#                                      and eboxd-worker@<queue>.service.d/metrics.conf (one metrics port each)
#   /usr/lib/sysusers.d/eboxd.conf     the system user and group eboxd
#
# Then it migrates the database (eboxd-migrate.service), enables eboxd.target with the daemon and
# one worker per queue, and starts them (stopping them first on an upgrade).
#
# Usage: deploy/install.sh [--root DIR] [--no-venv] [--no-start]
#   --root DIR   install below DIR and touch no running system (packaging, tests)
#   --no-venv    keep the existing /opt/eboxd/venv (only units, configuration and docs)
#   --no-start   install and enable, but neither migrate nor start
# Environment: PYTHON (default python3) creates the venv; EBOXD_WORKER_PORT_BASE (default 9191).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=""
make_venv=1
start=1
python=${PYTHON:-python3}
port_base=${EBOXD_WORKER_PORT_BASE:-9191}

while (($#)); do
    case $1 in
        --root) root=${2:?--root needs a directory}; shift 2 ;;
        --no-venv) make_venv=0; shift ;;
        --no-start) start=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ -z $root ]] || root=$(cd "$root" && pwd)

prefix=$root/opt/eboxd
etc=$root/etc/eboxd
units=$root/etc/systemd/system
live=0
[[ -z $root && -d /run/systemd/system ]] && live=1
say() { echo "eboxd install: $*" >&2; }

# 1. The system user (systemd-sysusers also works without systemd running).
install -D -m 0644 "$repo/deploy/sysusers.d/eboxd.conf" "$root/usr/lib/sysusers.d/eboxd.conf"
if command -v systemd-sysusers >/dev/null; then
    [[ -z $root ]] || install -d -m 0755 "$root/etc"
    systemd-sysusers ${root:+--root="$root"} eboxd.conf
fi
if [[ -z $root ]]; then
    group=eboxd
    getent group eboxd >/dev/null || { say "no group eboxd: is systemd-sysusers installed?"; exit 1; }
else  # the group exists below --root only: use its number
    group=$(awk -F: '$1 == "eboxd" { print $3 }' "$root/etc/group" 2>/dev/null || true)
    group=${group:-0}
fi

# 2. Stop a running eboxd before replacing its code (upgrade).
was_active=0
if ((live)) && systemctl is-active --quiet eboxd.target; then
    was_active=1
    say "stopping eboxd.target for the upgrade"
    systemctl stop eboxd.target
fi

# 3. The virtual environment.
if ((make_venv)); then
    say "installing eboxd into $prefix/venv"
    [[ -x $prefix/venv/bin/python ]] || "$python" -m venv "$prefix/venv"
    "$prefix/venv/bin/python" -m pip install -q --upgrade pip
    "$prefix/venv/bin/python" -m pip install -q --upgrade "$repo" "$repo/plugins/zip" "$repo/plugins/exact" \
        "$repo/plugins/yuki"
fi
py=$prefix/venv/bin/python
[[ -x $py ]] || py=$python

# 4. Documentation, alert rules, dashboard, and the CLI wrapper.
install -D -m 0644 -t "$prefix/share/doc" "$repo/docs/operations.md" "$repo/docs/metrics.md"
install -D -m 0644 -t "$prefix/share/prometheus" "$repo/deploy/prometheus/alerts.yml"
install -D -m 0644 -t "$prefix/share/grafana" "$repo/deploy/grafana/eboxd.json"
install -D -m 0755 /dev/stdin "$root/usr/local/bin/eboxd" <<'EOF'
#!/bin/sh
# eboxd's CLI as the service user, so files it creates belong to the service.
[ "$(id -un)" = eboxd ] && exec /opt/eboxd/venv/bin/eboxd "$@"
[ "$(id -u)" = 0 ] && exec runuser -u eboxd -- /opt/eboxd/venv/bin/eboxd "$@"
exec sudo -u eboxd /opt/eboxd/venv/bin/eboxd "$@"
EOF

# 5. Units, and one metrics port per worker instance (one instance per queue).
install -D -m 0644 -t "$units" "$repo"/deploy/systemd/eboxd.target "$repo"/deploy/systemd/*.service
mapfile -t queues < <(PYTHONPATH=$repo "$py" -c 'from daemon.workers.tasks import QUEUES; print(*QUEUES, sep="\n")')
for i in "${!queues[@]}"; do
    install -D -m 0644 /dev/stdin "$units/eboxd-worker@${queues[i]}.service.d/metrics.conf" <<EOF
# Written by deploy/install.sh: the metrics port of this worker instance (dramatiq exposition).
[Service]
Environment=dramatiq_prom_port=$((port_base + i))
EOF
done

# 6. Configuration and master key: created once, never overwritten.
install -d -m 0750 -g "$group" "$etc"
if [[ ! -e $etc/eboxd.toml ]]; then
    say "writing $etc/eboxd.toml (from config/eboxd.example.toml): set the broker and database URLs there"
    sed -e 's|^data_dir = ""|data_dir = "/var/lib/eboxd"|' -e 's|^key_file = ""|key_file = "/etc/eboxd/master.key"|' \
        "$repo/config/eboxd.example.toml" | install -m 0640 -g "$group" /dev/stdin "$etc/eboxd.toml"
fi
if [[ ! -e $etc/master.key ]]; then
    say "creating $etc/master.key: back it up, without it no stored key can be decrypted"
    (umask 077; PYTHONPATH=$repo "$py" -c 'import sys, pathlib; from daemon.secrets import create_key_file
create_key_file(pathlib.Path(sys.argv[1]))' "$etc/master.key")
    chgrp "$group" "$etc/master.key" && chmod 0640 "$etc/master.key"
fi

# 7. Enable, migrate, start.
if ((!live)); then
    say "installed below ${root:-/}; systemd is not running here, nothing enabled or started"
    exit 0
fi
systemctl daemon-reload
systemctl enable eboxd.target eboxd.service "${queues[@]/#/eboxd-worker@}"
if ((start || was_active)); then
    systemctl start eboxd-migrate.service
    systemctl start eboxd.target
    say "running: systemctl status eboxd.target; eboxd doctor"
else
    say "enabled; first \`systemctl start eboxd-migrate\`, then \`systemctl start eboxd.target\`"
fi
