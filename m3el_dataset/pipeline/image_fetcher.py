"""Stage 3: download, check and store the mention image and the candidates' images.

Images come from Wikimedia Commons' ``Special:FilePath`` (with ``?width=`` for a raster rendering) and are
stored in the release layout ``<release>/<topic>_candidates_images/<mention name>-<gold Qid>/<Qid>.<ext>``.
A candidate whose images all fail is replaced by the next spare; a mention whose gold image fails fails.
"""

from __future__ import annotations

import io
import logging
import re
import urllib.parse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from PIL import Image

from ..text_formats import entity_text
from .atomic import atomic_write_bytes
from .candidates import entity_from_dict, gold_placement
from .config import EndpointSettings, ImageSettings
from .http_client import HttpError, PipelineHttpClient
from .image_checks import ImageCheckError, check_image
from .image_selection import ImageSelector
from .stage import ItemFailure
from .wikidata import WikidataEntity

logger = logging.getLogger(__name__)

RELEASE_ROOT = "/M3EL/"
"""Prefix of local image paths in release records (the root of the unpacked archive)."""

_UNSAFE = re.compile(r'[\x00-\x1f/\\:*?"<>|]+')


def folder_name(surface: str, gold_qid: str) -> str:
    """``<mention name>-<gold Qid>`` made safe as one path component (no separators, no leading dots)."""
    name = _UNSAFE.sub("_", surface).strip().lstrip(".") or "mention"
    return f"{name[:120]}-{gold_qid}"


def commons_url(endpoints: EndpointSettings, file_name: str) -> str:
    """The ``Special:FilePath`` URL of a Commons file, as the release records it."""
    return endpoints.commons_file_path + urllib.parse.quote(file_name.replace(" ", "_"), safe="")


class ImageFetcher:
    """The per-item function of the images stage.

    Args:
        http (`PipelineHttpClient`): the pipeline's client.
        endpoints (`EndpointSettings`): the Commons base URL.
        settings (`ImageSettings`): limits and the thumbnail width.
        selector (`ImageSelector`): picks one image per entity.
        release_dir (`Path`): root of the release folder.
        k (`int`): candidates kept per mention.
    """

    def __init__(self, http: PipelineHttpClient, endpoints: EndpointSettings, settings: ImageSettings,
                 selector: ImageSelector, release_dir: Path, k: int) -> None:
        self.http = http
        self.endpoints = endpoints
        self.settings = settings
        self.selector = selector
        self.release_dir = Path(release_dir)
        self.k = k

    def __call__(self, found: dict[str, Any]) -> dict[str, Any]:
        mention = found["mention"]
        gold = entity_from_dict(found["gold"])
        relative = f"{mention['topic']}_candidates_images/{folder_name(mention['surface'], gold.qid)}"
        errors: dict[str, str] = {}
        gold_image = self.entity_image(gold, relative, errors)
        if gold_image is None:
            raise ItemFailure(f"no image of the gold entity {gold.qid} could be used: {errors.get(gold.qid)}")
        candidates, dropped = [], []
        for data in found["candidates"]:
            if len(candidates) == self.k:
                break
            entity = entity_from_dict(data)
            image = gold_image if entity.qid == gold.qid else self.entity_image(entity, relative, errors)
            if image is None:
                dropped.append({"qid": entity.qid, "reason": errors[entity.qid]})
            else:
                candidates.append({**asdict(entity), "image": image})
        if not candidates:
            # The release format (and its reader) require at least one candidate per mention.
            raise ItemFailure(f"no candidate image could be used: {'; '.join(d['reason'] for d in dropped)}")
        return {**found, "image": gold_image, "candidates": candidates, "dropped": dropped,
                "gold_placement": gold_placement(gold.qid, [c["qid"] for c in candidates])}

    def entity_image(self, entity: WikidataEntity, relative: str, errors: dict[str, str]) -> list[str] | None:
        """Download the entity's image(s), keep one, store it; ``[original name, url, local path]`` or `None`
        (then ``errors[qid]`` says why)."""
        good: list[tuple[str, bytes, str]] = []
        reasons = []
        for file_name in entity.images[: self.settings.max_images_per_entity]:
            try:
                good.append((file_name, *self._download(file_name)))
            except (HttpError, ImageCheckError) as err:
                reasons.append(f"{file_name}: {err}")
                continue
            if not self.selector.needs_all:
                break
        if not good:
            errors[entity.qid] = "; ".join(reasons) or "no image file"
            return None
        best = 0
        if len(good) > 1:
            text = entity_text(entity.label, entity.description)
            best = self.selector.select(text, [Image.open(io.BytesIO(data)) for _, data, _ in good])
        file_name, data, extension = good[best]
        local = f"{relative}/{entity.qid}{extension}"
        atomic_write_bytes(self.release_dir / local, data)
        return [file_name, commons_url(self.endpoints, file_name), RELEASE_ROOT + local]

    def _download(self, file_name: str) -> tuple[bytes, str]:
        url = commons_url(self.endpoints, file_name)
        if self.settings.thumb_width:
            url += f"?width={self.settings.thumb_width}"
        response = self.http.get(url, max_bytes=self.settings.max_bytes)
        checked = check_image(response.body, response.headers.get("content-type"), file_name,
                              self.settings.max_pixels)
        return response.body, checked.extension
