#!/usr/bin/env bash
# Builds berth_<version>_<arch>.deb from this checkout: the venv in /opt/berth (made with this
# machine's Debian Python, so build on the Debian release you install on), berth and berthd
# in /usr/bin, the systemd units, /etc/init.d/berthd and /etc/berth/daemon.json (conffiles).
#
#   scripts/build-deb.sh [OUTDIR]     (default: the current directory)
#
# Needs python3-venv and dpkg-deb; not root. pip reaches PyPI for Berth's libraries, or
# takes them from where PIP_FIND_LINKS / PIP_NO_INDEX point.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath "${1:-.}")
# shellcheck source=scripts/venv.sh
. "$here/scripts/venv.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
python=$(debian_python)
version=$("$python" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
    "$here/pyproject.toml")
arch=$(dpkg --print-architecture)
pyver=${python#/usr/bin/python}
root=$work/root

build_wheels "$here" "$work"
make_venv "$work" "$root"

install -d "$root/usr/bin" "$root/etc/berth" "$root/etc/init.d" "$root/usr/lib/systemd/system" \
    "$root/opt/berth/libexec" "$root/usr/share/doc/berth" "$root/DEBIAN"
ln -s /opt/berth/bin/berth "$root/usr/bin/berth"
ln -s /opt/berth/bin/berthd "$root/usr/bin/berthd"
install -m 0644 "$here/packaging/berthd.service" "$here/packaging/berth.socket" "$root/usr/lib/systemd/system/"
install -m 0755 "$here/packaging/berthd.init" "$root/etc/init.d/berthd"
install -m 0644 "$here/packaging/daemon.json" "$root/etc/berth/daemon.json"
install -m 0755 "$here/packaging/berth-setup" "$root/opt/berth/libexec/berth-setup"
install -m 0644 "$here/README.md" "$root/usr/share/doc/berth/README.md"
for script in preinst postinst prerm postrm; do
    install -m 0755 "$here/packaging/debian/$script" "$root/DEBIAN/$script"
done
printf '%s\n' /etc/berth/daemon.json /etc/init.d/berthd >"$root/DEBIAN/conffiles"
cat >"$root/DEBIAN/control" <<EOF
Package: berth
Version: $version
Architecture: $arch
Maintainer: Berth developers <berth@localhost>
Section: admin
Priority: optional
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: python$pyver, runc, iptables, iproute2, procps, passwd, tini
Suggests: docker-cli | docker.io
Description: Docker-compatible container engine (berthd) and client (berth)
 berthd owns images, containers, networks and volumes and serves the Docker
 Engine API on /run/berth.sock (berth.socket, berthd.service); berth is a
 client whose commands follow the docker CLI. Every Docker client works
 against berthd. Berth lives in its own venv in /opt/berth.
EOF
mkdir -p "$out"
deb=$out/berth_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zgzip --build "$root" "$deb" >/dev/null
echo "$deb"
