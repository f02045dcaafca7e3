"""DWE+ (issue 17): losses, head, feature extraction and the benchmark adapter, on tiny random models offline."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_baselines import save_tiny_owlvit
from tiny_clip import save_tiny_clip
from transformers import OwlViTConfig, OwlViTForObjectDetection

from m3el_benchmark.systems.dwe_plus.configuration import DWEPlusConfig
from m3el_benchmark.systems.dwe_plus.loss import clip_contrastive_loss, n_pair_loss
from m3el_benchmark.systems.dwe_plus.modeling import DWEPlusHead


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A tiny CLIP and a tiny random OWL-ViT detector, saved like Hub checkpoints."""
    root = tmp_path_factory.mktemp("dwe_models")
    clip = save_tiny_clip(root / "clip")
    owl = save_tiny_owlvit(root / "owl")
    torch.manual_seed(0)
    OwlViTForObjectDetection(OwlViTConfig.from_pretrained(owl)).save_pretrained(owl)
    return clip, owl


def tiny_config(**overrides) -> DWEPlusConfig:
    return DWEPlusConfig(**{"feature_dim": 16, "hidden_size": 16, "num_attention_heads": 4, "dropout": 0.0,
                            **overrides})  # fmt: skip


def test_n_pair_loss_matches_a_hand_computed_case():
    g = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    positive = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    negatives = torch.tensor([[[2.0, 0.0]], [[1.0, 0.0]]])
    # g·p = 1, 2; g·n = 2, 0 -> log(1 + e^{1}) and log(1 + e^{-2}); L2 = (1 + 4 + 2 + 1) / 2
    expected = (math.log(1 + math.e) + math.log(1 + math.exp(-2))) / 2 + 0.02 * 4.0
    assert n_pair_loss(g, positive, negatives, 0.02).item() == pytest.approx(expected, rel=1e-6)
    assert n_pair_loss(g, positive, negatives, 0.0).item() == pytest.approx(expected - 0.08, rel=1e-6)


def test_clip_loss_is_symmetric_and_small_for_matching_pairs():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 8, generator=generator), torch.randn(4, 8, generator=generator)
    scale = torch.tensor(math.log(1 / 0.07))
    assert clip_contrastive_loss(a, b, scale).item() == pytest.approx(clip_contrastive_loss(b, a, scale).item())
    assert clip_contrastive_loss(a, a, scale) < clip_contrastive_loss(a, b, scale)


def test_attention_over_one_key_is_a_linear_map_of_that_key():
    torch.manual_seed(0)
    head = DWEPlusHead(tiny_config()).eval()
    attention = head.crop_attention
    key = torch.randn(3, 1, 16)
    outputs = [head._attend(torch.randn(3, 16), key, None) for _ in range(2)]  # any query: softmax over 1 key = 1
    w_v = attention.in_proj_weight[32:]
    b_v = attention.in_proj_bias[32:]
    expected = attention.out_proj(key[:, 0] @ w_v.T + b_v)
    torch.testing.assert_close(outputs[0], expected)
    torch.testing.assert_close(outputs[1], expected)


def test_key_padding_mask_ignores_padded_crops_and_faithful_padding_does_not():
    torch.manual_seed(0)
    inputs = [torch.randn(2, 16) for _ in range(3)]
    crops = torch.cat([torch.randn(2, 1, 16), torch.zeros(2, 2, 16)], dim=1)
    mask = torch.tensor([[True, False, False]] * 2)
    for masked in (True, False):
        head = DWEPlusHead(tiny_config(key_padding_mask=masked)).eval()
        padded = head(*inputs, crops, mask).mention_embeds
        alone = head(*inputs, crops[:, :1], mask[:, :1]).mention_embeds
        assert torch.allclose(padded, alone, atol=1e-6) is masked


def _synthetic(n: int, num_entities: int, dim: int, seed: int):
    """Mentions whose gold entity is a fixed linear function of their mention feature (plus noise elsewhere)."""
    generator = torch.Generator().manual_seed(seed)
    entities = torch.nn.functional.normalize(torch.randn(num_entities, dim, generator=generator), dim=-1)
    mixing = torch.randn(dim, dim, generator=generator)
    gold = torch.randint(num_entities, (n,), generator=generator)
    mention = entities[gold] @ mixing + 0.05 * torch.randn(n, dim, generator=generator)
    noise = [torch.randn(n, dim, generator=generator) for _ in range(2)]
    crops = torch.randn(n, 2, dim, generator=generator)
    return entities, gold, [mention, noise[0], noise[1], crops, torch.ones(n, 2, dtype=torch.bool)]


def test_head_learns_a_synthetic_set_far_above_chance():
    torch.manual_seed(0)
    num_entities, dim = 20, 16
    entities, gold, features = _synthetic(256, num_entities, dim, seed=1)
    head = DWEPlusHead(tiny_config(dropout=0.1))
    optimizer = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=0.001)
    generator = torch.Generator().manual_seed(2)
    for _ in range(300):
        rows = torch.randint(len(gold), (32,), generator=generator)
        negatives = torch.randint(num_entities, (32, 4), generator=generator)
        output = head(*(tensor[rows] for tensor in features), positives=entities[gold[rows]],
                      negatives=entities[negatives])  # fmt: skip
        output.loss.backward()
        optimizer.step(), optimizer.zero_grad()
    test_entities, test_gold, test_features = _synthetic(200, num_entities, dim, seed=1)
    head.eval()
    with torch.no_grad():
        g = torch.nn.functional.normalize(head(*test_features).mention_embeds, dim=-1)
    accuracy = (g @ entities.T).argmax(dim=1).eq(test_gold).float().mean().item()
    assert accuracy > 0.6, accuracy  # chance is 1/20


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    head = DWEPlusHead(tiny_config(fusion="sum", fine_loss_weight=1.0)).eval()
    loaded = DWEPlusHead.from_pretrained(head.save_pretrained(tmp_path / "dwe"))
    assert loaded.config.fusion == "sum" and loaded.config.fine_loss_weight == 1.0
    inputs = [torch.randn(2, 16) for _ in range(3)] + [torch.randn(2, 3, 16), torch.ones(2, 3, dtype=torch.bool)]
    torch.testing.assert_close(head(*inputs).mention_embeds, loaded(*inputs).mention_embeds)
    with pytest.raises(FileNotFoundError, match="holds no DWE\\+ head"):
        DWEPlusHead.from_pretrained(tmp_path)


def test_config_refuses_unknown_options():
    with pytest.raises(ValueError, match="fusion 'gated'"):
        DWEPlusConfig(fusion="gated")
    with pytest.raises(ValueError, match="multiple of num_attention_heads"):
        DWEPlusConfig(hidden_size=30, num_attention_heads=8)
