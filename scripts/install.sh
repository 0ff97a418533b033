#!/usr/bin/env bash
# Installs Berth on a fresh Debian machine (as root) and starts berthd on /run/berth.sock.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export DEBIAN_FRONTEND=noninteractive

apt-get update -qq
grep -v '^#' "$here/scripts/debian-packages.txt" | xargs apt-get install -y -qq >/dev/null
python3 -m pip install -q "$here"
python3 -m compileall -q "$(python3 -c "import berth, os; print(os.path.dirname(berth.__file__))")" >/dev/null || true

if ! berth -H unix:///run/berth.sock version >/dev/null 2>&1; then
    mkdir -p /var/log
    nohup berthd >>/var/log/berthd.log 2>&1 &
    for _ in $(seq 100); do
        berth -H unix:///run/berth.sock version >/dev/null 2>&1 && break
        sleep 0.1
    done
fi
berth -H unix:///run/berth.sock version
if [ -x "$here/scripts/first-container.sh" ]; then
    "$here/scripts/first-container.sh"
fi
