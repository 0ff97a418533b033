#!/usr/bin/env bash
# Installs Berth on Debian 12 or 13, as root: the Debian packages it needs, Berth in its own
# venv (/opt/berth) made with Debian's Python, berth and berthd linked into /usr/local/bin,
# the systemd units (berth.socket, berthd.service) or /etc/init.d/berthd, the docker context
# "berth" where a docker CLI is installed; then berthd is started and runs a first container.
# Run it again to upgrade in place: berthd restarts (containers keep running with
# live-restore on). scripts/uninstall.sh removes it all.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin  # the system's, not a user's python3
export DEBIAN_FRONTEND=noninteractive
# shellcheck source=scripts/venv.sh
. "$here/scripts/venv.sh"
setup=$here/packaging/berth-setup

if [ "$(id -u)" != 0 ]; then
    echo "install.sh: run it as root: sudo $0" >&2
    exit 1
fi
if [ "$(dpkg-query -W -f '${Status}' berth 2>/dev/null)" = "install ok installed" ]; then
    echo "install.sh: Berth is installed here from its Debian package; upgrade that with" \
        "apt install ./berth_<version>_amd64.deb (scripts/build-deb.sh makes it)," \
        "or apt remove berth before using this script" >&2
    exit 1
fi

echo "Installing Debian packages: $(grep -v '^#' "$here/scripts/debian-packages.txt" | tr '\n' ' ')"
apt-get update -qq
grep -v '^#' "$here/scripts/debian-packages.txt" | xargs apt-get install -y -qq >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "Building Berth's wheels"
build_wheels "$here" "$work"

# From here on berthd is down (an upgrade), for as long as a local venv takes to make.
if [ -x "$BERTH_VENV/libexec/berth-setup" ]; then
    "$BERTH_VENV/libexec/berth-setup" stop-daemon
fi
echo "Making the venv $BERTH_VENV"
make_venv "$work" ""
install -D -m 0755 "$setup" "$BERTH_VENV/libexec/berth-setup"
ln -sfn "$BERTH_VENV/bin/berth" /usr/local/bin/berth
ln -sfn "$BERTH_VENV/bin/berthd" /usr/local/bin/berthd

if [ ! -e /etc/berth/daemon.json ]; then
    install -D -m 0644 "$here/packaging/daemon.json" /etc/berth/daemon.json
fi
install -D -m 0644 "$here/packaging/berthd.service" /etc/systemd/system/berthd.service
install -D -m 0644 "$here/packaging/berth.socket" /etc/systemd/system/berth.socket
install -D -m 0755 "$here/packaging/berthd.init" /etc/init.d/berthd
"$setup" group
if command -v systemctl >/dev/null; then
    systemctl enable --quiet berth.socket berthd.service
fi

"$setup" start
"$setup" context-add
berth version
if [ ! -d /run/systemd/system ]; then
    cat <<EOF

systemd is not running here, so berthd was started by /etc/init.d/berthd (log:
/var/log/berthd.log) and will not start by itself at boot. With sysvinit:
    update-rc.d berthd defaults
With another init, have it run "/etc/init.d/berthd start" at boot.
EOF
fi
"$here/scripts/first-container.sh"
