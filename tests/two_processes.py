"""Run a script of the repository as two CPU processes under `accelerate launch`, as users would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A local port nobody listens on, so that concurrent launches do not collide."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_two_cpu_processes(script: str, args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    """``ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 <script> <args>`` from the repo root.

    ``--cpu --num_processes 2`` would silently start one process: ``--multi_gpu`` with ``ACCELERATE_USE_CPU`` is what
    gives two real ranks (gloo). Fails the calling test with the end of stderr if the launch fails.
    """
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO)}  # fmt: skip
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()), str(REPO / script), *args]  # fmt: skip
    completed = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed
