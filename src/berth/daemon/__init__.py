"""berthd, the daemon (``berthd`` console script, or ``python -m berth.daemon``)."""


def main(argv: list[str] | None = None) -> int:
    from berth.daemon.main import main as run
    return run(argv)
