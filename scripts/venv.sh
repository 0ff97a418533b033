# shellcheck shell=bash
# Sourced by install.sh and build-deb.sh: Berth's venv, made from the checkout with Debian's
# own Python (never the system site-packages, never a python3 that happens to be on PATH).
#
#   build_wheels CHECKOUT WORKDIR   wheels of Berth and what it needs, in WORKDIR/wheels
#                                   (pip reaches PyPI, or what PIP_FIND_LINKS/PIP_NO_INDEX say)
#   make_venv WORKDIR DESTDIR       /opt/berth under DESTDIR ("" for the real one) from them
#
# The venv has no pip and no setuptools: nothing there but Berth and its libraries, so a
# `berth` command loads nothing it does not use.

BERTH_VENV=/opt/berth
export PIP_DISABLE_PIP_VERSION_CHECK=1

# /usr/bin/python3.X, the interpreter Debian's python3 points at.
debian_python() {
    local version
    if ! version=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); then
        echo "Debian's /usr/bin/python3 does not run: apt-get install python3-venv" >&2
        return 1
    fi
    echo "/usr/bin/python$version"
}

build_wheels() {
    local checkout=$1 work=$2 python
    python=$(debian_python)
    if ! "$python" -m venv "$work/build-venv" >"$work/venv.log" 2>&1; then
        cat "$work/venv.log" >&2
        echo "could not make a venv with $python: is python3-venv installed?" >&2
        return 1
    fi
    # A copy of the sources: an in-tree build would leave build/ in the checkout, and stale
    # files there would end up in the next wheel.
    mkdir -p "$work/source"
    cp -r "$checkout/pyproject.toml" "$checkout/src" "$work/source/"
    find "$work/source" -name __pycache__ -prune -exec rm -rf {} +
    "$work/build-venv/bin/pip" wheel -q -w "$work/wheels" "$work/source"
}

make_venv() {
    local work=$1 destdir=$2 python target
    python=$(debian_python)
    target=$destdir$BERTH_VENV
    rm -rf "$target"
    "$python" -m venv --without-pip "$target"
    "$work/build-venv/bin/pip" --python "$target/bin/python3" install -q --no-compile \
        --no-index --find-links "$work/wheels" berth
    # berth and berthd as two-line scripts: pip's own import re (and enum, functools...) for a
    # Windows file-name fix, a few milliseconds of every `berth` command.
    "$target/bin/python3" - "$target/bin" <<'EOF'
import importlib.metadata, os, sys
for ep in importlib.metadata.distribution("berth").entry_points.select(group="console_scripts"):
    module, _, function = ep.value.partition(":")
    path = os.path.join(sys.argv[1], ep.name)
    with open(path, "w") as script:
        script.write(f"#!{sys.executable}\nimport sys\nfrom {module} import {function}\nsys.exit({function}())\n")
    os.chmod(path, 0o755)
EOF
    if [ -n "$destdir" ]; then
        # Made under DESTDIR, run from /opt/berth: the scripts' #! lines, activate, pyvenv.cfg.
        grep -rlI --null -F "$target" "$target" | xargs -0 -r sed -i "s|$target|$BERTH_VENV|g"
    fi
    # Bytecode now, for the Python that will run it: `berth --version` starts in ~30 ms with it.
    "$target/bin/python3" -m compileall -q -j0 ${destdir:+-s "$destdir" -p /} "$target/lib" >/dev/null
}
