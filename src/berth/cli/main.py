"""``berth`` entry point. Kept tiny: ``berth --version`` must answer without importing the
client, HTTP or JSON modules; everything else is in ``berth.cli.app``."""

import sys

# Global flags that take a value (so their value is not mistaken for a command or flag).
_VALUE_FLAGS = frozenset(["--config", "-c", "--context", "-H", "--host", "-l", "--log-level",
                          "--tlscacert", "--tlscert", "--tlskey"])


def _wants_version(argv: list[str]) -> bool:
    """-v/--version among the global flags (before the command), as docker reads it."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-v", "--version"):
            return True
        if arg == "--" or not arg.startswith("-") or arg == "-":
            return False
        if arg in _VALUE_FLAGS:
            i += 2
            continue
        if arg.startswith("--version="):
            return arg.split("=", 1)[1] in ("1", "t", "T", "true", "TRUE", "True")
        if not arg.startswith("--") and "v" in arg[1:] and all(c in "Dv" for c in arg[1:]):
            return True  # bundled bool shorthands, e.g. -Dv
        i += 1
    return False


def version_line() -> str:
    from berth import __version__

    return f"Berth version {__version__}, build {_build()}"


def _build() -> str:
    """A build id stamped at packaging time (berth/BUILD), else "dev"."""
    import os

    import berth

    try:
        with open(os.path.join(os.path.dirname(berth.__file__), "BUILD"), encoding="utf-8") as f:
            return f.read().strip() or "dev"
    except OSError:
        return "dev"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if _wants_version(args):
        sys.stdout.write(version_line() + "\n")
        return 0
    from berth.cli.app import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
