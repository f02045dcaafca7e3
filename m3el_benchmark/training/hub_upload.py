"""Publishing a trained CLIP-ND to the Hugging Face Hub (``--push_to_hub``), with transformers' argument names.

The repo is created (or found) before training starts, so that a wrong token or name fails in seconds, not after
hours of training. At the end the output folder's model files go up in one commit: weights, config, processor and
tokenizer files, the model card (``README.md``), the remote code and the custom pipeline file. A LoRA adapter
(``--lora_r --save_merged false``) goes up with its card and processor, and the CLIP-ND it applies to (its ``base/``
folder) to a second repo, ``<repo>-base``, which the pushed adapter names. Checkpoints, optimizer states, the lock
file and run logs stay local, except that ``--hub_strategy checkpoint`` also pushes each resumable checkpoint to
``last-checkpoint/`` as it is saved (transformers' meaning).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi

from modeling_clip_nd import CLIPNDConfig

from ..model_card import build_adapter_base_card, build_training_card
from .arguments import TrainingArguments
from .lora_adapter import BASE_DIR, is_adapter_folder, model_folder, point_adapter_at

logger = logging.getLogger(__name__)

MODEL_IGNORE_PATTERNS = ["*/*", ".*", "*.jsonl"]
"""Not pushed with the model: sub-folders (checkpoints, tracker logs), hidden files (the lock, staging folders) and
the run logs (``train_log.jsonl``); the model folder itself is flat."""

LAST_CHECKPOINT_DIR = "last-checkpoint"
"""Where ``--hub_strategy checkpoint`` puts the newest checkpoint in the repo (transformers' name)."""


class HubUploadError(OSError):
    """Creating or uploading to the Hub repo failed; what is on the local disk is complete."""


@dataclass
class HubPublisher:
    """Pushes one training's output to one Hub repo. Build it with `create`, on the main process only.

    Args:
        api (`HfApi`): the client (its token: ``--hub_token``, else ``$HF_TOKEN`` or the login's).
        repo_id (`str`): the full repo id the Hub resolved (``namespace/name``).
        strategy (`str`): ``--hub_strategy``.
        private (`bool`, *optional*): ``--hub_private_repo``, also for a LoRA adapter's ``<repo>-base``.
    """

    api: HfApi
    repo_id: str
    strategy: str = "end"
    private: bool | None = None

    @classmethod
    def create(cls, args: TrainingArguments) -> HubPublisher:
        """Create the repo of ``args`` (``--hub_model_id``, default ``--output_dir``'s name, as transformers) if it
        does not exist, with ``--hub_private_repo``'s visibility; raise `HubUploadError` naming it if that fails."""
        publisher = cls(HfApi(token=args.hub_token), "", args.hub_strategy, args.hub_private_repo)
        publisher.repo_id = publisher._create_repo(args.hub_model_id or Path(args.output_dir).absolute().name)
        if args.lora_r and not args.save_merged:
            publisher._create_repo(publisher.base_repo_id)  # the adapter's base: it fails now too, if it fails
        logger.info("Will push the trained model to https://huggingface.co/%s", publisher.repo_id)
        return publisher

    @property
    def base_repo_id(self) -> str:
        """Where a LoRA adapter's base CLIP-ND goes."""
        return f"{self.repo_id}-base"

    def push_model(self, folder: str | Path) -> None:
        """Upload the model files of ``folder`` in one commit, its card showing the repo; for a LoRA adapter, first
        its ``base/`` to `base_repo_id`, which the uploaded adapter then names (the local one keeps its folder)."""
        folder = Path(folder)
        config = CLIPNDConfig.from_pretrained(model_folder(folder))
        if config.training_arguments is not None:
            build_training_card(config, repo_id=self.repo_id).save(folder / "README.md")
        if not is_adapter_folder(folder):
            self._upload(folder, ignore_patterns=MODEL_IGNORE_PATTERNS, what="the trained model")
        else:
            build_adapter_base_card(config, self.repo_id).save(folder / BASE_DIR / "README.md")
            self._create_repo(self.base_repo_id)
            self._upload(folder / BASE_DIR, repo_id=self.base_repo_id, ignore_patterns=MODEL_IGNORE_PATTERNS,
                         what="the base model of the LoRA adapter")  # fmt: skip
            point_adapter_at(folder, self.base_repo_id)
            try:
                self._upload(folder, ignore_patterns=MODEL_IGNORE_PATTERNS, what="the LoRA adapter")
            finally:  # the local adapter keeps loading its local base, offline too
                point_adapter_at(folder, (folder / BASE_DIR).resolve())
        logger.info("Pushed %s to https://huggingface.co/%s", folder, self.repo_id)

    def push_checkpoint(self, checkpoint: str | Path) -> None:
        """With ``--hub_strategy checkpoint``: replace the repo's ``last-checkpoint/`` with ``checkpoint``."""
        if self.strategy != "checkpoint":
            return
        self._upload(Path(checkpoint), path_in_repo=LAST_CHECKPOINT_DIR, delete_patterns=["*"],
                     what=f"checkpoint {Path(checkpoint).name}")  # fmt: skip

    def _create_repo(self, name: str) -> str:
        """Create ``name`` (or find it: ``exist_ok``) with ``--hub_private_repo``'s visibility; return its full id."""
        try:
            return self.api.create_repo(name, private=self.private, exist_ok=True).repo_id
        except Exception as error:  # HTTP, network, auth or a bad name: all end the same way for the user
            raise HubUploadError(
                f"Could not create or find the Hub repo {name!r} for --push_to_hub ({error}). Log in with "
                "`hf auth login` (or set HF_TOKEN / --hub_token), check --hub_model_id, or drop --push_to_hub."
            ) from error

    def _upload(self, folder: Path, *, what: str, repo_id: str | None = None, **options) -> None:
        repo_id = repo_id or self.repo_id
        try:
            self.api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=f"Upload {what}", **options)
        except Exception as error:  # as in `_create_repo`: the reason is in the message, the local files are intact
            raise HubUploadError(
                f"Could not upload {what} to the Hub repo {repo_id} ({error}); the local folder {folder} is "
                f"complete: push it again with HubPublisher(HfApi(), {self.repo_id!r}).push_model(<output folder>) "
                "(m3el_benchmark.training.hub_upload), which also points a LoRA adapter at its base repo."
            ) from error


__all__ = ["HubPublisher", "HubUploadError"]
