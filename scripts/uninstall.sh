#!/usr/bin/env bash
# Removes what scripts/install.sh installed, as root: every container and berthd are stopped
# (berthd then removes its bridges and iptables rules), the docker context "berth", the units,
# the links, the venv. Images, containers, volumes (/var/lib/berth) and /etc/berth stay,
# unless --purge is given. The Debian packages install.sh asked for stay, and so does the
# docker group (Docker shares it).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
setup=$here/packaging/berth-setup

purge=0
case "${1:-}" in
    "") ;;
    --purge) purge=1 ;;
    *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac
if [ "$(id -u)" != 0 ]; then
    echo "uninstall.sh: run it as root: sudo $0 $*" >&2
    exit 1
fi
if [ "$(dpkg-query -W -f '${Status}' berth 2>/dev/null)" = "install ok installed" ]; then
    echo "uninstall.sh: Berth is installed here from its Debian package: apt remove berth" \
        "(apt purge berth removes its state too)" >&2
    exit 1
fi

"$setup" context-remove
"$setup" stop
if command -v systemctl >/dev/null; then
    systemctl disable --quiet berth.socket berthd.service 2>/dev/null || true
fi
rm -f /etc/systemd/system/berthd.service /etc/systemd/system/berth.socket
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi
if [ -e /etc/init.d/berthd ]; then
    update-rc.d -f berthd remove >/dev/null 2>&1 || true
    rm -f /etc/init.d/berthd
fi
for link in /usr/local/bin/berth /usr/local/bin/berthd; do
    if [ "$(readlink "$link" 2>/dev/null)" = "/opt/berth/bin/${link##*/}" ]; then
        rm -f "$link"
    fi
done
rm -rf /opt/berth
echo "Berth is uninstalled."

if [ "$purge" = 1 ]; then
    for dir in /var/lib/berth /run/berth; do
        # Nothing is mounted there once berthd stopped; never delete through a mount.
        if grep -q " ${dir}[/ ]" /proc/mounts; then
            echo "uninstall.sh: $dir still has mounts (see /proc/mounts); left in place" >&2
            exit 1
        fi
        rm -rf "$dir"
    done
    rm -rf /etc/berth /etc/default/berthd /var/log/berthd.log /run/berthd.pid
    echo "Its data (/var/lib/berth) and configuration (/etc/berth) are removed too."
else
    echo "Kept: images, containers and volumes in /var/lib/berth, and /etc/berth" \
        "($0 --purge removes them)."
fi
