"""Measure kfp-ci as users install it: byte-compiled.

``pip install kfp-ci`` writes ``.pyc`` files for every module, as it did for kfp. A development checkout
installed in editable mode under ``PYTHONDONTWRITEBYTECODE=1`` (as on the reference machine) has none, and then
every ``kfp-ci`` process recompiles the package from source (~0.3 s). Each benchmark calls :func:`prepare`
first, so both sides of every comparison start from byte-compiled code.
"""

from __future__ import annotations

import compileall
import os
from pathlib import Path

import kfp_ci


def prepare() -> None:
    """Byte-compile the kfp_ci package in place and let the processes the benchmark starts use the .pyc files."""
    package = Path(kfp_ci.__file__).resolve().parent
    compileall.compile_dir(str(package), quiet=1)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
