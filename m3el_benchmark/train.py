# Trains CLIP-ND as in the M3EL paper: CLIP fine-tuned with CLIP's symmetric contrastive (InfoNCE) loss whose entity
# text is augmented with descriptions (aug_T) and whose images are randomly cropped (aug_I), on any M3EL task and
# text format, with in-batch negatives (--hard_negatives adds each mention's other candidates).
#
#   accelerate launch benchmark/train.py --init openai/clip-vit-base-patch32 --dataset <org>/m3el \
#       --task ITm-ITe --text_format M-S1 --output_dir outputs/clip_nd --mixed_precision bf16
#   python benchmark/train.py configs.yaml          # the same arguments from a YAML or JSON file
#
# The paper's recipe is the default: AdamW lr 1e-5, betas (0.9, 0.98), eps 1e-6, weight decay 0.001, batch 256,
# 35 epochs, task ITm-ITe. The saved model is the last one (--load_best_model_at_end keeps the best validation one);
# the output folder loads with AutoModel.from_pretrained(output_dir, trust_remote_code=True). --push_to_hub uploads it
# (model, processor, card, remote code) to --hub_model_id at the end.
"""Command-line entry point of CLIP-ND training (the library is `m3el_benchmark.training`)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from accelerate import PartialState
from transformers import HfArgumentParser

from m3el_benchmark.cli import package_version, run_cli
from m3el_benchmark.run_logging import main_process_from_environment, run_logging
from m3el_benchmark.training.arguments import DataArguments, ModelArguments, TrainingArguments
from m3el_benchmark.training.hub_upload import HubPublisher
from m3el_benchmark.training.trainer import CLIPNDTrainer, TrainResult

logger = logging.getLogger(__name__)


def parse_arguments(argv: Sequence[str] | None = None) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    """Parse the command line, or a single ``.yaml``/``.json`` file holding the same arguments."""
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments))
    parser.add_argument("--version", action="version", version=f"m3el {package_version()}")
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
        return parser.parse_yaml_file(argv[0])
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(argv[0])
    return parser.parse_args_into_dataclasses(args=argv)


def main(argv: Sequence[str] | None = None) -> TrainResult:
    """Train and save CLIP-ND; return where it was saved and its validation figures."""
    model_args, data_args, training_args = parse_arguments(argv)
    hub = None  # the repo is made before training, so that a bad token or name fails at once
    if training_args.push_to_hub and PartialState().is_main_process:
        hub = HubPublisher.create(training_args)
    with run_logging(training_args.verbosity, *main_process_from_environment()):
        result = CLIPNDTrainer(model_args, data_args, training_args, hub=hub).train()
        logger.info("Saved CLIP-ND to %s: the weights of step %s of %d (validation ACC %s)", result.output_dir,
                    result.kept_step, result.steps, result.validation_accuracy)  # fmt: skip
        if hub is not None:
            hub.push_model(result.output_dir)
    if argv is None:  # the script owns its processes: end the process group it started (a caller's stays)
        PartialState().destroy_process_group()
    return result


def cli(argv: Sequence[str] | None = None) -> int:
    """The ``m3el-train`` console script: `main`, with a user's mistake printed as one line (exit status 2)."""
    return run_cli("m3el-train", main, argv)


if __name__ == "__main__":
    sys.exit(cli())
