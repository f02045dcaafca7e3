"""Publishing from training (``--push_to_hub``, against a mocked `HfApi`) and LoRA adapter runs that load back."""

import json
from pathlib import Path

import pytest
import torch
from fresh_process import last_json_line, run_without_the_package
from huggingface_hub.utils import filter_repo_objects
from tiny_clip import save_tiny_clip, tiny_processor

from m3el_benchmark.train import cli, parse_arguments
from m3el_benchmark.training import hub_upload
from m3el_benchmark.training.hub_upload import HubPublisher, HubUploadError
from m3el_benchmark.training.lora_adapter import ADAPTER_CONFIG_FILE
from m3el_benchmark.training.trainer import CLIPNDTrainer
from m3el_dataset.export import ExportConfig, export_release
from m3el_dataset.sample import SAMPLE_DIR
from modeling_clip_nd import CLIPNDModel

TINY = ["--init", "tiny", "--tiny_hidden_size", "32", "--tiny_image_size", "16", "--tiny_patch_size", "8",
        "--tiny_vocab_size", "600", "--report_to", "none", "--learning_rate", "1e-3",
        "--per_device_train_batch_size", "16", "--validation_split", ""]  # fmt: skip
CODE_FILES = {"configuration_clip_nd.py", "modeling_clip_nd.py", "loss_clip_nd.py", "pipeline_clip_nd.py",
              "processing_clip_nd.py"}  # fmt: skip
TOKEN = "hf_secret_never_uploaded"


@pytest.fixture(scope="module")
def sample_hub(tmp_path_factory):
    return export_release(SAMPLE_DIR, tmp_path_factory.mktemp("sample") / "hub", ExportConfig()).out_dir


class RecordingHfApi:
    """Stands in for `HfApi`: records the repo it is asked for and the files each commit would upload (read at
    call time, as `upload_folder` reads them), with the text of the small ones."""

    instances: list["RecordingHfApi"] = []
    fail_upload = False

    def __init__(self, token=None):
        self.token, self.repos, self.commits = token, [], []
        RecordingHfApi.instances.append(self)

    def create_repo(self, repo_id, *, private=None, exist_ok=False, **_):
        self.repos.append({"name": repo_id, "private": private, "exist_ok": exist_ok})
        return type("RepoUrl", (), {"repo_id": repo_id if "/" in repo_id else f"someone/{repo_id}"})()

    def upload_folder(self, *, repo_id, folder_path, path_in_repo=None, ignore_patterns=None, delete_patterns=None,
                      **_):  # fmt: skip
        if self.fail_upload:
            raise ConnectionError("503 Service Unavailable")
        folder = Path(folder_path)
        paths = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        kept = filter_repo_objects(paths, ignore_patterns=ignore_patterns)
        files = {path: (folder / path).read_bytes() for path in kept}
        self.commits.append({"repo_id": repo_id, "path_in_repo": path_in_repo, "delete": delete_patterns,
                             "files": files})  # fmt: skip


@pytest.fixture
def hub_api(monkeypatch):
    RecordingHfApi.instances, RecordingHfApi.fail_upload = [], False
    monkeypatch.setattr(hub_upload, "HfApi", RecordingHfApi)
    return RecordingHfApi


def test_push_to_hub_uploads_model_processor_card_and_code_and_never_the_token(tmp_path, sample_hub, hub_api):
    out = tmp_path / "run"
    push = ["--push_to_hub", "--hub_model_id", "clip_nd_tiny", "--hub_private_repo", "true", "--hub_token", TOKEN,
            "--hub_strategy", "checkpoint", "--checkpointing_steps", "1", "--max_steps", "2"]  # fmt: skip
    assert cli([*TINY, "--dataset", str(sample_hub), "--output_dir", str(out), *push]) == 0
    (api,) = hub_api.instances
    assert api.token == TOKEN and api.repos == [{"name": "clip_nd_tiny", "private": True, "exist_ok": True}]
    *checkpoints, final = api.commits
    assert [c["path_in_repo"] for c in checkpoints] == ["last-checkpoint", "last-checkpoint"]
    assert all(c["delete"] == ["*"] and "trainer_state.json" in c["files"] for c in checkpoints)
    uploaded = set(final["files"])
    assert final["repo_id"] == "someone/clip_nd_tiny" and final["path_in_repo"] is None
    assert {"model.safetensors", "config.json", "README.md", "tokenizer.json", "processor_config.json"} <= uploaded
    assert CODE_FILES <= uploaded
    assert not any(path.startswith(("checkpoints/", ".")) or path.endswith(".jsonl") for path in uploaded)
    assert (out / "checkpoints").is_dir() and (out / "train_log.jsonl").is_file()  # kept locally
    card = final["files"]["README.md"].decode()
    assert 'from_pretrained("someone/clip_nd_tiny", trust_remote_code=True)' in card
    config = json.loads(final["files"]["config.json"])
    assert "multimodal-entity-linking" in config["custom_pipelines"]
    assert not set(config["training_arguments"]) & {"push_to_hub", "hub_token", "hub_model_id"}
    assert not any(TOKEN.encode() in content for commit in api.commits for content in commit["files"].values())
    assert (out / "README.md").read_text() == card  # the local folder is what the repo holds


def test_help_shows_the_hub_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_arguments(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert exit_info.value.code == 0
    for flag in ("--push_to_hub", "--hub_model_id", "--hub_strategy", "--hub_token", "--hub_private_repo"):
        assert f"{flag} " in help_text
    assert "'checkpoint': also push each resumable checkpoint" in help_text


def test_hub_model_id_defaults_to_the_output_folder_name(tmp_path, hub_api):
    (args,) = parse_arguments(["--output_dir", str(tmp_path / "my_clip_nd"), "--push_to_hub"])[2:]
    assert HubPublisher.create(args).repo_id == "someone/my_clip_nd"
    assert hub_api.instances[0].repos[0]["private"] is None  # unset: the account's default visibility


def test_a_failing_upload_names_the_repo_and_says_the_local_folder_is_complete(tmp_path, hub_api):
    folder = tmp_path / "model"
    CLIPNDModel.from_clip(save_tiny_clip(tmp_path / "clip")).save_pretrained(folder)
    hub_api.fail_upload = True
    with pytest.raises(HubUploadError, match=r"someone/m .*503.*local folder .*model is complete.*push_model"):
        HubPublisher(RecordingHfApi(), "someone/m").push_model(folder)


def test_a_repo_that_cannot_be_created_stops_the_run_before_training(tmp_path, sample_hub, monkeypatch, capsys):
    class RefusingHfApi(RecordingHfApi):
        def create_repo(self, repo_id, **_):
            raise PermissionError("401 Unauthorized")

    monkeypatch.setattr(hub_upload, "HfApi", RefusingHfApi)
    out = tmp_path / "run"
    argv = [*TINY, "--dataset", str(sample_hub), "--output_dir", str(out), "--push_to_hub", "--max_steps", "1"]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert "m3el-train: error: Could not create or find the Hub repo 'run'" in err and "401" in err
    assert not (out / "model.safetensors").exists()


# ------------------------------------------------------------------------------------------------ LoRA adapter
_FRESH_PROCESS_SCRIPT = """
    import json, sys
    import torch
    from peft import AutoPeftModel
    from transformers import AutoModel, AutoProcessor
    folder = sys.argv[1]
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    inputs = processor(text=json.loads(sys.argv[2]), padding=True, return_tensors="pt")
    out = {}
    for name, loader in (("auto_peft", AutoPeftModel), ("auto_model", AutoModel)):
        model = loader.from_pretrained(folder, trust_remote_code=True).eval()
        with torch.no_grad():
            out[name] = model.get_text_features(**inputs).tolist()  # CLIP-ND returns the embeddings
    out["module"] = type(model).__module__
    print(json.dumps(out))
    """
TEXTS = ["the eiffel tower", "a cat on a mat"]


def _text_features(model, processor) -> torch.Tensor:
    inputs = processor(text=TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model.eval().get_text_features(**inputs)  # CLIP-ND returns the embeddings, not an output object


def test_lora_adapter_run_writes_a_real_card_and_loads_back_with_auto_peft_model(tmp_path, sample_hub, hub_api,
                                                                                  monkeypatch):  # fmt: skip
    from peft import AutoPeftModel, PeftModel
    from transformers import AutoModel, modeling_utils
    from transformers.models.auto import auto_factory

    out = tmp_path / "adapter"
    lora = ["--lora_r", "4", "--save_merged", "false", "--max_steps", "2", "--task", "ITm-ITe"]
    model_args, data_args, args = parse_arguments([*TINY, "--dataset", str(sample_hub), "--output_dir", str(out),
                                                   *lora])  # fmt: skip
    trainer = CLIPNDTrainer(model_args, data_args, args)
    trainer.train()
    assert hub_api.instances == []  # nothing is uploaded without --push_to_hub
    trained = trainer.accelerator.unwrap_model(trainer.module).model
    assert isinstance(trained, PeftModel)
    expected = _text_features(trained, trainer.processor)
    with trained.disable_adapter():
        base = _text_features(trained, trainer.processor)
    assert not torch.allclose(expected, base, atol=1e-4)  # the adapter matters: loading it is tested, not the base

    adapter_config = json.loads((out / ADAPTER_CONFIG_FILE).read_text())
    assert adapter_config["base_model_name_or_path"] == str((out / "base").resolve())
    assert (out / "base" / "model.safetensors").is_file() and not (out / "model.safetensors").exists()
    assert adapter_config["auto_mapping"] == {"base_model_class": "AutoModel", "parent_library": "transformers"}
    card = (out / "README.md").read_text()
    assert "LoRA adapter (rank 4, alpha 16" in card and "AutoPeftModel.from_pretrained(" in card
    assert "| Task | ITm-ITe |" in card and "trained from scratch" in card and "- peft" in card
    assert "[More Information Needed]" not in card  # not peft's blank template

    peft_model = AutoPeftModel.from_pretrained(out, trust_remote_code=True)
    lora_weights = sorted(name for name, _ in peft_model.named_parameters() if "lora_" in name)
    assert list(peft_model.peft_config) == ["default"]  # one adapter, though transformers also loads it on the base
    assert lora_weights == sorted(name for name, _ in trained.named_parameters() if "lora_" in name)
    torch.testing.assert_close(_text_features(peft_model, trainer.processor), expected, atol=1e-5, rtol=1e-5)
    merged = peft_model.merge_and_unload()
    assert type(merged).__name__ == "CLIPNDModel" and not any("lora_" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(_text_features(merged, trainer.processor), expected, atol=1e-5, rtol=1e-5)
    merged.save_pretrained(tmp_path / "merged")  # whole weights: nothing marks them as a base any more
    reloaded = CLIPNDModel.from_pretrained(tmp_path / "merged")
    torch.testing.assert_close(_text_features(reloaded, trainer.processor), expected, atol=1e-5, rtol=1e-5)
    with_adapter = AutoModel.from_pretrained(out, trust_remote_code=True)  # transformers' peft integration
    torch.testing.assert_close(_text_features(with_adapter, trainer.processor), expected, atol=1e-5, rtol=1e-5)

    # Without peft the adapter folder does not load at all (it has no config.json): never the base passed as trained.
    with monkeypatch.context() as patch:
        patch.setattr(auto_factory, "is_peft_available", lambda: False)
        patch.setattr(modeling_utils, "maybe_load_adapters", lambda path, _, **kwargs: (None, path, kwargs))
        with pytest.raises((OSError, ValueError), match="config.json"):
            AutoModel.from_pretrained(out, trust_remote_code=True)

    # Where our package cannot be imported, both loaders build CLIP-ND from the folder's remote code.
    loaded = last_json_line(run_without_the_package(_FRESH_PROCESS_SCRIPT, [str(out), json.dumps(TEXTS)], tmp_path))
    assert loaded["module"].startswith("transformers_modules.")
    for name in ("auto_peft", "auto_model"):
        torch.testing.assert_close(torch.tensor(loaded[name]), expected, atol=1e-5, rtol=1e-5, msg=name)


def test_pushing_an_adapter_pushes_its_base_to_a_second_repo_and_names_it(tmp_path, hub_api):
    from peft import LoraConfig, get_peft_model

    from m3el_benchmark.model_card import build_model_card
    from m3el_benchmark.training.lora_adapter import save_adapter_with_base

    base = CLIPNDModel.from_clip(save_tiny_clip(tmp_path / "clip"))
    model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"]))
    out = tmp_path / "out"
    save_adapter_with_base(model, out, build_model_card(), tiny_processor(), (out / "base").resolve())
    HubPublisher(RecordingHfApi(), "someone/adapter").push_model(out)
    (api,) = hub_api.instances
    assert [repo["name"] for repo in api.repos] == ["someone/adapter-base"]
    base_commit, adapter_commit = api.commits
    assert base_commit["repo_id"] == "someone/adapter-base" and adapter_commit["repo_id"] == "someone/adapter"
    assert {"model.safetensors", "config.json", "modeling_clip_nd.py", "README.md"} <= set(base_commit["files"])
    assert "not trained" in base_commit["files"]["README.md"].decode()
    assert {ADAPTER_CONFIG_FILE, "adapter_model.safetensors", "README.md"} <= set(adapter_commit["files"])
    assert not any(path.startswith("base/") for path in adapter_commit["files"])
    pushed = json.loads(adapter_commit["files"][ADAPTER_CONFIG_FILE])["base_model_name_or_path"]
    assert pushed == "someone/adapter-base"
    local = json.loads((out / ADAPTER_CONFIG_FILE).read_text())["base_model_name_or_path"]
    assert local == str((out / "base").resolve())  # the local adapter still loads offline


def test_lora_adapter_with_load_best_model_at_end_keeps_its_base_and_records_the_run(tmp_path, sample_hub,
                                                                                     monkeypatch):  # fmt: skip
    from peft import AutoPeftModel

    from m3el_benchmark.train import main
    from m3el_benchmark.training import trainer as trainer_module

    figures = iter([0.5, 0.8, 0.6])  # saved at steps 4 and 8 (the second save replaces base/), kept: step 8
    monkeypatch.setattr(trainer_module, "evaluate_accuracy", lambda *args: {"accuracy": next(figures), "mrr": 0.5})
    out = tmp_path / "best"
    epochs = ["--per_device_train_batch_size", "64", "--validation_split", "validation", "--num_train_epochs", "3"]
    main([*TINY, "--dataset", str(sample_hub), "--output_dir", str(out), *epochs, "--lora_r", "4", "--save_merged",
          "false", "--load_best_model_at_end", "true"])  # fmt: skip
    assert sorted(path.name for path in out.iterdir() if path.is_dir()) == ["base"]  # no staging folder left
    recorded = json.loads((out / "base" / "config.json").read_text())["training_arguments"]
    assert (recorded["kept_step"], recorded["trained_steps"]) == (8, 12)
    assert "those after step 8 of the 12 steps trained" in (out / "README.md").read_text()
    assert not (out / "config.json").exists()
    assert list(AutoPeftModel.from_pretrained(out, trust_remote_code=True).peft_config) == ["default"]
