"""``python -m kfp_ci``: the same as the ``kfp-ci`` command."""

from kfp_ci.cli import main

if __name__ == "__main__":
    main(prog_name="kfp-ci")
