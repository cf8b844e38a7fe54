"""``python -m kfp_ci``: the same as the ``kfp-ci`` command."""

from kfp_ci.cli import run

if __name__ == "__main__":
    run()
