#!/usr/bin/env python3
"""Decide, before anything is installed, whether the deploy step compiles (needs kfp) or only uploads files.

Runs with the bare interpreter and kfp-ci's sources on PYTHONPATH (only kfp_ci.config, stdlib-only, is read).
Mirrors ``kfp-ci deploy --compile``: ``auto`` uploads a configured pipeline's committed ``output`` when the file
exists, else compiles; ``always`` compiles; ``never`` never does. With an image tag (KFP_CI_IMAGE) ``auto``
becomes ``always``: the committed file cannot carry a tag built in this job.

Environment: KFP_CI_IN_COMPILE, KFP_CI_IN_PIPELINES, KFP_CI_IMAGE, KFP_CI_IN_WORKING_DIRECTORY, KFP_CI_IN_CONFIG.
Step outputs: ``mode`` (what to pass to --compile) and ``extras`` (``compile`` when kfp is needed, else empty).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _output(values: dict[str, str]) -> None:
    path = os.environ.get("GITHUB_OUTPUT")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.writelines(f"{key}={value}\n" for key, value in values.items())


def needs_compiler(mode: str, words: list[str]) -> bool:
    from kfp_ci.config import load_settings

    config_file = os.environ.get("KFP_CI_IN_CONFIG") or None
    settings = load_settings({}, config_file=Path(config_file) if config_file else None)
    configured = {c.name: c for c in settings.pipelines if c.name}
    chosen = []
    for word in words:
        path_part = word.rsplit(":", 1)[0] if ":" in word and not Path(word).exists() else word
        if word in configured:
            chosen.append(configured[word])
        elif path_part.endswith((".yaml", ".yml", ".json")):
            continue  # a compiled file: uploaded as is
        elif path_part.endswith(".py"):
            return mode != "never"
    if not words:
        chosen = list(settings.pipelines)
    if mode == "never":
        return False
    return any(mode == "always" or c.output is None or not c.output.is_file() for c in chosen)


def main() -> int:
    mode = (os.environ.get("KFP_CI_IN_COMPILE") or "auto").strip().lower()
    if mode not in ("auto", "always", "never"):
        print(f"::error title=kfp-ci action::compile must be auto, always or never, not '{mode}'")
        return 2
    if mode == "auto" and os.environ.get("KFP_CI_IMAGE"):
        print("compile: auto -> always (an image tag is set; the committed files cannot carry it)")
        mode = "always"
    workdir = os.environ.get("KFP_CI_IN_WORKING_DIRECTORY")
    if workdir:
        os.chdir(workdir)
    try:
        compiler = needs_compiler(mode, (os.environ.get("KFP_CI_IN_PIPELINES") or "").split())
    except Exception as exc:  # a bad config: install kfp too and let kfp-ci report it in one line
        print(f"compile: cannot read [tool.kfp-ci] here ({type(exc).__name__}); installing the compiler too")
        compiler = True
    print(f"compile: {mode}; " + ("compiling, kfp is installed" if compiler else
                                  "uploading committed compiled files, kfp is not installed"))
    _output({"mode": mode, "extras": "compile" if compiler else ""})
    return 0


if __name__ == "__main__":
    sys.exit(main())
