"""The suite's own set-up (conftest.py): offline, and tiny models on one thread so a loaded machine cannot thrash."""

import os
import subprocess
import sys

import torch


def test_torch_runs_on_one_thread_in_tests_and_in_the_processes_they_start():
    assert torch.get_num_threads() == 1 and torch.get_num_interop_threads() == 1
    code = "import torch; print(torch.get_num_threads())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "1" and os.environ["OMP_NUM_THREADS"] == "1"


def test_no_hub_is_reached():
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"
