"""A LoRA adapter on CLIP-ND's text and vision attention: train one step, save, reload and merge back."""

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from tiny_clip import random_images, save_tiny_clip, tiny_processor
from transformers import AutoModel

from modeling_clip_nd import CLIPNDModel

ATTENTION_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "out_proj"]


@pytest.fixture
def base_dir(tmp_path):
    """A saved CLIP-ND model (from a tiny CLIP) that both the trained and the reloaded adapter start from."""
    CLIPNDModel.from_clip(save_tiny_clip(tmp_path / "clip")).save_pretrained(tmp_path / "base")
    return tmp_path / "base"


@pytest.fixture
def batch():
    processor = tiny_processor()
    mentions = processor(text=["paris", "lyon", "nice"], images=random_images(3), padding=True, return_tensors="pt")
    entities = processor(
        text=["capital of france", "city on the rhone", "city on the riviera"], padding=True, return_tensors="pt"
    )
    return {
        **mentions,
        "entity_input_ids": entities["input_ids"],
        "entity_attention_mask": entities["attention_mask"],
    }


def test_lora_adapter_trains_saves_reloads_and_merges(tmp_path, base_dir, batch):
    config = LoraConfig(r=4, lora_alpha=8, target_modules=ATTENTION_PROJECTIONS, lora_dropout=0.0)
    model = get_peft_model(CLIPNDModel.from_pretrained(base_dir), config)
    adapted = {name for name, _ in model.named_modules() if name.endswith(tuple(ATTENTION_PROJECTIONS))}
    assert any(".text_model." in name for name in adapted) and any(".vision_model." in name for name in adapted)
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)

    # 1. One training step on the contrastive loss; LoRA's B matrices start at zero, so they must move.
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    loss = model(**batch, return_loss=True).loss
    loss.backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        trained = model(**batch).mention_embeds
        base = CLIPNDModel.from_pretrained(base_dir).eval()(**batch).mention_embeds
    assert not torch.allclose(trained, base, atol=1e-4)

    # 2. Save the adapter alone, reload it on a fresh base, merge it back into a plain CLIPNDModel.
    model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    reloaded = PeftModel.from_pretrained(CLIPNDModel.from_pretrained(base_dir), tmp_path / "adapter")
    merged = reloaded.merge_and_unload().eval()
    assert type(merged) is CLIPNDModel
    assert not any("lora_" in name for name, _ in merged.named_parameters())
    with torch.no_grad():
        torch.testing.assert_close(merged(**batch).mention_embeds, trained, atol=1e-5, rtol=1e-5)

    # 3. The merged model saves and loads like any CLIP-ND model.
    merged.save_pretrained(tmp_path / "merged")
    loaded = AutoModel.from_pretrained(tmp_path / "merged").eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).mention_embeds, trained, atol=1e-5, rtol=1e-5)
