import io

import pytest


class Result:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"Result(code={self.code}, out={self.out!r}, err={self.err!r})"


@pytest.fixture
def berth():
    """Run the CLI in-process: berth("context", "ls") -> Result(code, out, err)."""
    from berth.cli.app import run

    def call(*args: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        code = run(list(args), out=out, err=err)
        return Result(code, out.getvalue(), err.getvalue())

    return call
