"""Image checks, image selection (first / CLIP) and the images stage's use of a selector."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from pipeline_server import FakeWikimedia, tiny_image

from m3el_dataset.pipeline.config import EndpointSettings, HttpSettings, ImageSettings
from m3el_dataset.pipeline.http_client import PipelineHttpClient
from m3el_dataset.pipeline.image_checks import ImageCheckError, check_image, storage_extension
from m3el_dataset.pipeline.image_fetcher import ImageFetcher, commons_url, folder_name
from m3el_dataset.pipeline.image_selection import ClipImageSelector, build_image_selector
from m3el_dataset.pipeline.wikidata import WikidataEntity


def test_valid_images_pass_and_keep_extension_case():
    checked = check_image(tiny_image("a", "JPEG"), "image/jpeg", "Kansas Full 2.JPG", 10_000)
    assert (checked.format, checked.extension, checked.width) == ("JPEG", ".JPG", 8)
    # An SVG file rendered as PNG by Commons is stored as .png.
    assert check_image(tiny_image("b"), "image/png", "Map.svg", 10_000).extension == ".png"


@pytest.mark.parametrize(("data", "content_type", "message"), [
    (b"<html>Not Found</html>", "text/html", "is not an image"),
    (b"<html>Not Found</html>", "image/jpeg", "no known raster image"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml", "no known raster image"),
    (tiny_image("t")[:40], "image/png", "does not decode"),
    (tiny_image("big", size=(200, 200)), "image/png", "exceed the limit"),
])
def test_bad_images_are_refused_with_reason(data, content_type, message):
    with pytest.raises(ImageCheckError, match=message):
        check_image(data, content_type, "x.png", max_pixels=10_000)


def test_storage_extension():
    assert storage_extension("a.jpeg", "JPEG", ".jpg") == ".jpeg"
    assert storage_extension("a.png", "JPEG", ".jpg") == ".jpg"
    assert storage_extension("noext", "PNG", ".png") == ".png"


def test_folder_and_url_are_safe():
    assert folder_name("AC/DC: Live?", "Q1") == "AC_DC_ Live_-Q1"
    assert folder_name("../..", "Q2") == "_..-Q2"
    endpoints = EndpointSettings(commons_file_path="https://c/wiki/Special:FilePath/")
    assert commons_url(endpoints, "Kansas Full 2.JPG") == "https://c/wiki/Special:FilePath/Kansas_Full_2.JPG"


class PickLast:
    name = "last"
    needs_all = True

    def __init__(self) -> None:
        self.seen = 0

    def select(self, text, images):
        self.seen = len(images)
        return len(images) - 1


def test_selector_sees_every_image_and_its_choice_is_stored(tmp_path):
    with FakeWikimedia() as fake:
        for name in ("One.png", "Two.jpg", "Three.png"):
            fake.add_image(name, "JPEG" if name.endswith("jpg") else "PNG")
        http = PipelineHttpClient(HttpSettings(min_interval_s=0.0, max_retries=0, cache_dir=tmp_path / "c"))
        selector = PickLast()
        fetcher = ImageFetcher(http, EndpointSettings(commons_file_path=fake.file_path), ImageSettings(),
                               selector, tmp_path / "M3EL", k=3)
        entity = WikidataEntity("Q7", "Seven", "a number", ["One.png", "Missing.png", "Two.jpg", "Three.png"])
        errors = {}
        image = fetcher.entity_image(entity, "movies_candidates_images/Seven-Q7", errors)
    # max_images_per_entity=3: One, Missing (404, skipped), Two; the selector picks the last good one.
    assert selector.seen == 2 and image[0] == "Two.jpg"
    assert image[2] == "/M3EL/movies_candidates_images/Seven-Q7/Q7.jpg"
    assert (tmp_path / "M3EL/movies_candidates_images/Seven-Q7/Q7.jpg").read_bytes() == fake.files["Two.jpg"][1]


def test_clip_selector_scores_with_a_tiny_clip_model():
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(
        text_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "vocab_size": 99, "max_position_embeddings": 16},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                       "num_attention_heads": 4, "image_size": 30, "patch_size": 2},
        projection_dim=16,
    )
    selector = ClipImageSelector("unused")
    selector._model = CLIPModel(config).eval()

    class Processor:  # stands in for CLIPProcessor: fixed token ids, images resized to 30x30
        def __call__(self, text, images, **kwargs):
            pixels = torch.stack([torch.from_numpy(np.asarray(im.resize((30, 30)), dtype=np.float32))
                                  .permute(2, 0, 1) / 255 for im in images])

            class Batch(dict):
                def to(self, device):
                    return self

            return Batch(input_ids=torch.tensor([[1, 5, 7, 2]]), attention_mask=torch.ones(1, 4, dtype=torch.long),
                         pixel_values=pixels)

    selector._processor = Processor()
    images = [Image.open(io.BytesIO(tiny_image(n))) for n in ("a", "b", "c")]
    scores = selector.scores("Seven: a number", images)
    assert scores.shape == (3,) and torch.all(scores.abs() <= 1.0001)
    assert selector.select("Seven: a number", images) == int(scores.argmax())


def test_build_image_selector():
    assert build_image_selector(None).name == "first"
    assert build_image_selector("openai/clip-vit-base-patch32").name == "clip"
