"""Load the example pipelines by file path (both modules are called ``pipeline``)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ENERGY = EXAMPLES / "building_energy" / "pipeline.py"
UNZIP = EXAMPLES / "unzip_csv" / "pipeline.py"


def load_example(path: Path) -> ModuleType:
    name = f"kfp_ci_example_{path.parent.name}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def local_task_output(pipeline_root: Path, task: str) -> dict[str, Any]:
    """The executor output kfp.local wrote for ``task`` of the only run under ``pipeline_root``."""
    found = sorted(pipeline_root.glob(f"*/{task}/executor_output.json"))
    assert len(found) == 1, f"expected one {task} output under {pipeline_root}, found {found}"
    data: dict[str, Any] = json.loads(found[0].read_text())
    return data
