"""Run a script where this repository's packages cannot be imported, as on the machine of a Hub user who only has
transformers (and what the script imports): the remote code a model folder carries must do all the work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

GUARD = textwrap.dedent(
    """
    import sys
    for _package in ("modeling_clip_nd", "m3el_benchmark", "m3el_dataset"):
        try:
            __import__(_package)
        except ImportError:
            pass
        else:
            sys.exit(f"{_package} must not be importable here")
    """
)
"""Prepended to every script: it stops at once if one of our packages is importable after all."""


def run_without_the_package(
    script: str, args: Sequence[str], folder: Path, timeout: int = 180
) -> subprocess.CompletedProcess:
    """Run ``script`` (dedented, after `GUARD`) with ``args`` in ``folder``; assert it succeeded and return it.

    ``-S`` skips the .pth files (an editable install of m3el is one); ``PYTHONPATH`` then offers only
    site-packages. Remote code is cached under ``folder`` and the Hub is offline; stdin is closed, so a
    ``trust_remote_code`` prompt can never wait.
    """
    path = folder / "fresh_process_script.py"
    path.write_text(GUARD + textwrap.dedent(script))
    site_packages = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(site_packages), "HF_MODULES_CACHE": str(folder / "modules"),
           "HF_HUB_OFFLINE": "1"}  # fmt: skip
    result = subprocess.run([sys.executable, "-S", str(path), *args], cwd=folder, env=env, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=timeout)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def last_json_line(result: subprocess.CompletedProcess) -> Any:
    """The JSON object a script printed last."""
    return json.loads(result.stdout.strip().splitlines()[-1])
