"""``kfp-ci demo``'s ending, with the CI steps replaced by a command that only writes the compiled file the demo
checks for: ``python demo_stub_flow.py DATA_DIR [--exit]``. The server, its URL and the way it stops are real."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kfp_ci.local._demo import demo_command


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def steps(args: tuple[str, ...]) -> None:
    if "compile" in args:
        out = Path(args[args.index("--out-dir") + 1])
        out.mkdir(parents=True, exist_ok=True)
        (out / "stub.yaml").write_text("pipelineInfo: {name: stub}\n")


if __name__ == "__main__":
    sys.exit(demo_command(steps, Path(sys.argv[1]), exit_at_end="--exit" in sys.argv[2:]))
