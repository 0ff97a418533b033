#!/usr/bin/env bash
# The first container on a fresh install: a busybox image made offline from Debian's
# busybox-static (no registry needed), imported into berthd, then run once.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/berth.sock}
if ! berth image inspect busybox:latest >/dev/null 2>&1; then
    python3 "$here/tests/images_harness.py" | berth import -c 'CMD ["sh"]' - busybox:latest
fi
berth run --rm busybox echo "Hello from your first Berth container"
