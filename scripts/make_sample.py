# Generate the bundled M3EL sample release (`m3el_dataset/sample_data/`), a small synthetic stand-in for the
# original archive in exactly its raw format: per-topic record files plus images under
# `<topic>_candidates_images/<mention name>-<gold Qid>/<Qid>.<ext>`.
#
# The sample is fake but learnable. Candidates of a mention share (or nearly share) their name, so the name
# alone never decides; the gold entity's description shares its kind and attribute words with the mention's
# context, and every entity has a visual signature (background colour, shape, count) that its description
# spells out in words and its image shows. Everything comes from seeded `random.Random` instances, so running
#
#     python scripts/make_sample.py
#
# twice writes byte-identical files (the tests check that the committed sample is fresh).
from __future__ import annotations

import argparse
import io
import json
import logging
import random
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np
from PIL import Image, ImageDraw

try:
    from m3el_dataset.constants import TOPICS
except ImportError:  # run as `python scripts/make_sample.py` from a clone that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from m3el_dataset.constants import TOPICS

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "m3el_dataset" / "sample_data"
README_MARKER = "# M3EL sample release (synthetic)"
QID_START = 9_000_001
COMMONS_FILE_URL = "https://commons.wikimedia.org/wiki/Special:FilePath/"
EXTENSIONS: tuple[str, ...] = (".jpg", ".png", ".JPG", ".jpeg", ".png")
JSONL_TOPICS: tuple[str, ...] = ("common", "sports")
"""Topics written as JSON Lines; the others as JSON arrays, because the reader accepts both."""

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (200, 40, 40),
    "green": (40, 150, 60),
    "blue": (40, 80, 200),
    "yellow": (230, 200, 40),
    "purple": (130, 50, 160),
    "orange": (240, 140, 30),
    "grey": (128, 128, 128),
    "brown": (120, 75, 40),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
COUNT_WORDS: tuple[str, ...] = ("one", "two", "three")
PEOPLE: tuple[str, ...] = (
    "Ada Brenner", "Hugo Lindqvist", "Rosa Castell", "Felix Moreau", "Nina Okafor",
    "Paul Varga", "Irene Hale", "Tomas Rossi", "Lena Dorsey", "Victor Marsh",
)  # fmt: skip


@dataclass(frozen=True)
class TopicSpec:
    """Vocabulary and templates of one topic; `{M}`, `{kind}`, `{attr_kind}`, `{year}`, … are filled in."""

    kinds: tuple[str, ...]
    attributes: tuple[str, ...]
    name_words: tuple[tuple[str, ...], ...]
    name_format: str
    aliases: tuple[str, ...]
    qualifier: str
    description: str
    first_sentences: tuple[str, ...]
    details: tuple[str, ...]
    colour_sentence: str
    generic_kind: str
    file_noun: str
    years: tuple[int, int] = (1920, 2015)


TOPIC_SPECS: dict[str, TopicSpec] = {
    "movies": TopicSpec(
        kinds=("film", "documentary", "series", "novel", "band", "play"),
        attributes=("comedy", "western", "horror", "musical", "war", "romance", "crime", "silent"),
        name_words=(
            ("Silver", "Kansas", "Midnight", "Crimson", "Northern", "Broken", "Golden", "Hollow", "Velvet", "Iron"),
            ("Harbour", "Road", "Saloon", "Garden", "River", "Mirror", "Crown", "Valley", "Station", "Lantern"),
        ),
        name_format="{0} {1}",
        aliases=("keep_first", "the_prefix"),
        qualifier="{name} II",
        description="{year} {attr_kind} by {person}, shown by {sig}",
        first_sentences=(
            "{M} is a {year} {attr_kind} by {person}.",
            "Released in {year}, {M} is {a_attr_kind} made by {person}.",
            "Many viewers still remember {M}, the {attr_kind} that {person} made in {year}.",
        ),
        details=(
            "The {kind} was first shown in {year}.",
            "{person} worked on the {kind} for two years.",
            "Critics called it the best {attr_kind} of its decade.",
        ),
        colour_sentence="Its poster is mostly {colour}.",
        generic_kind="work",
        file_noun="poster",
    ),
    "common": TopicSpec(
        kinds=("tool", "dish", "plant", "bird", "garment", "game", "drink", "dance"),
        attributes=("kitchen", "garden", "winter", "summer", "festive", "travel", "farm", "party"),
        name_words=(
            (
                "Crane",
                "Mercury",
                "Spring",
                "Bat",
                "Pitch",
                "Jam",
                "Seal",
                "Bow",
                "Date",
                "Palm",
                "Trunk",
                "Ruby",
                "Kiwi",
                "Sage",
                "Mint",
                "Cricket",
                "Jack",
                "Fan",
                "Scale",
                "Pound",
                "Club",
                "Star",
                "Tank",
                "Chip",
                "Ring",
                "Organ",
                "Bark",
                "Bass",
                "Cap",
                "Coach",
                "Drill",
                "Punch",
                "Lily",
            ),
        ),
        name_format="{0}",
        aliases=("lower", "plural"),
        qualifier="Common {name}",
        description="everyday {attr_kind}, shown by {sig}",
        first_sentences=(
            "When choosing {M}, look for {a_attr_kind} that feels sturdy.",
            "The word {M} often means {a_attr_kind} that most households know.",
            "Learning about {M} starts with knowing it is {a_attr_kind}.",
        ),
        details=(
            "Keep the {kind} clean and dry after use.",
            "Ask an expert if the {kind} looks damaged.",
            "Such {a_attr_kind} is easy to find in local shops.",
        ),
        colour_sentence="It is often pictured on a {colour} background.",
        generic_kind="thing",
        file_noun="photo",
    ),
    "person": TopicSpec(
        kinds=("painter", "footballer", "politician", "singer", "chemist", "poet", "actor", "architect"),
        attributes=("American", "French", "Italian", "Japanese", "Mexican", "Swedish", "Indian", "Irish"),
        name_words=(
            ("Anna", "John", "Maria", "Peter", "Clara", "Louis", "Eva", "Martin", "Helen", "Oscar"),
            ("Marlow", "Brenner", "Castell", "Dorsey", "Lindqvist", "Moreau", "Okafor", "Varga", "Rossi", "Hale"),
        ),
        name_format="{0} {1}",
        aliases=("drop_first", "initial_first"),
        qualifier="{name} Jr.",
        description="{attr_kind} born in {year}, shown by {sig}",
        first_sentences=(
            "{M} is {a_attr_kind} born in {year}.",
            "Born in {year}, {M} became a well known {attr_kind}.",
            "The {attr_kind} {M} was born in {year} and trained with {person}.",
        ),
        details=(
            "Their first success as {a_kind} came early.",
            "They later taught young people who wanted to become {a_kind}.",
            "{person} called them the finest {attr_kind} of the age.",
        ),
        colour_sentence="Portraits often show them against {colour}.",
        generic_kind="figure",
        file_noun="portrait",
        years=(1880, 1995),
    ),
    "books": TopicSpec(
        kinds=("novel", "memoir", "anthology", "essay", "play", "comic", "textbook"),
        attributes=("mystery", "fantasy", "historical", "gothic", "romance", "adventure", "satirical", "juvenile"),
        name_words=(
            ("Silent", "Last", "Hidden", "Winter", "Paper", "Glass", "Lost", "Burning", "Distant", "Salt"),
            ("Orchard", "Letter", "Island", "Tower", "Map", "Season", "House", "Voyage", "Kingdom", "Archive"),
        ),
        name_format="The {0} {1}",
        aliases=("drop_first", "keep_last"),
        qualifier="{name} Revisited",
        description="{year} {attr_kind} by {person}, shown by {sig}",
        first_sentences=(
            "{M} is {a_attr_kind} written by {person} in {year}.",
            "Published in {year}, {M} is {a_attr_kind} by {person}.",
            "Readers first met {M}, {a_attr_kind} by {person}, in {year}.",
        ),
        details=(
            "The {kind} sold well in its first year.",
            "{person} revised the {kind} twice.",
            "It is often taught as a classic {attr_kind}.",
        ),
        colour_sentence="The first edition had a {colour} cover.",
        generic_kind="book",
        file_noun="cover",
        years=(1850, 2015),
    ),
    "sports": TopicSpec(
        kinds=("football club", "rugby club", "basketball team", "cricket team", "hockey club", "cycling team"),
        attributes=("Lisbon", "Leeds", "Porto", "Lyon", "Turin", "Bremen", "Cork", "Malmo"),
        name_words=(
            ("Ashford", "Kingsbury", "Redcliffe", "Portmore", "Elmstead", "Halvern", "Westbrook", "Dunmore"),
            ("Rovers", "Athletic", "United", "Wanderers", "City", "Rangers", "Albion", "Harriers"),
        ),
        name_format="{0} {1}",
        aliases=("keep_first", "acronym"),
        qualifier="{name} Women",
        description="{attr_kind} founded in {year}, shown by {sig}",
        first_sentences=(
            "{M} is {a_attr_kind} founded in {year}.",
            "Founded in {year}, {M} is {a_attr_kind}.",
            "Last season {M}, the {attr_kind}, won its league.",
        ),
        details=(
            "The {kind} was coached by {person} for a decade.",
            "Supporters of the {kind} fill the stands every week.",
            "It remains the oldest {attr_kind} in the region.",
        ),
        colour_sentence="The team plays in {colour}.",
        generic_kind="side",
        file_noun="crest",
        years=(1870, 2010),
    ),
}


@dataclass
class SampleConfig:
    """How the sample is generated.

    Args:
        out (`Path`): folder to (re)write; it stands for the `/M3EL/` root of the unpacked archive.
        mentions_per_topic (`int`, *optional*, defaults to 60): mentions written for each topic.
        seed (`int`, *optional*, defaults to 0): seed of every random choice.
        image_size (`int`, *optional*, defaults to 32): side of the square images in pixels.
        jpeg_quality (`int`, *optional*, defaults to 75): JPEG quality (fixed, with 4:4:4 subsampling, for
            byte-identical output).
        gold_shares (`tuple`, *optional*): shares of mentions with the gold first, elsewhere, absent.
        alias_share (`float`, *optional*, defaults to 0.4): share of mentions whose surface differs from the gold name.
        same_image_share (`float`, *optional*, defaults to 0.6): share of gold-present mentions whose image is
            the gold candidate's very file; the others get a shifted, noisy rendering of the same signature.
        two_candidate_mentions (`int`, *optional*, defaults to 1): mentions per topic with only two candidates.
    """

    out: Path = DEFAULT_OUT
    mentions_per_topic: int = 60
    seed: int = 0
    image_size: int = 32
    jpeg_quality: int = 75
    gold_shares: tuple[float, float, float] = (0.55, 0.30, 0.15)
    alias_share: float = 0.4
    same_image_share: float = 0.6
    two_candidate_mentions: int = 1
    topics: tuple[str, ...] = field(default=TOPICS)

    def __post_init__(self) -> None:
        if self.mentions_per_topic < 2:
            raise ValueError(f"--mentions-per-topic must be at least 2, got {self.mentions_per_topic}.")
        if not 16 <= self.image_size <= 256:
            raise ValueError(f"--image-size must be between 16 and 256 pixels, got {self.image_size}.")


@dataclass
class Entity:
    """A synthetic Wikidata entity with its words and visual signature."""

    qid: str
    name: str
    kind: str
    attribute: str
    year: int
    person: str
    colour: str
    shape: str
    count: int
    extension: str

    def signature(self) -> str:
        """The visual signature in words, e.g. ``"two white circles on red"``."""
        plural = "es" if self.shape == "cross" else "s"
        shape = self.shape if self.count == 1 else self.shape + plural
        return f"{COUNT_WORDS[self.count - 1]} {shape_colour_name(self.colour)} {shape} on {self.colour}"


@dataclass
class Mention:
    """One mention record before it is written, with its image bytes keyed by path under the output folder."""

    record: dict
    files: dict[str, bytes]


ALIASES = {
    "keep_first": lambda tokens: tokens[0],
    "keep_last": lambda tokens: tokens[-1],
    "drop_first": lambda tokens: " ".join(tokens[1:]),
    "initial_first": lambda tokens: f"{tokens[0][0]}. {' '.join(tokens[1:])}",
    "acronym": lambda tokens: "".join(token[0] for token in tokens),
    "the_prefix": lambda tokens: "The " + " ".join(tokens),
    "lower": lambda tokens: " ".join(tokens).lower(),
    "plural": lambda tokens: " ".join(tokens) + "s",
}
"""Ways a mention's surface form departs from the entity name: partial names, abbreviations, variants."""


def shape_colour_name(background: str) -> str:
    """Black shapes on light backgrounds, white ones on dark backgrounds, so the shapes always show."""
    red, green, blue = PALETTE[background]
    return "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 150 else "white"


def with_article(words: str) -> str:
    """``"a comedy film"`` / ``"an American painter"``."""
    return ("an " if words[0].lower() in "aeiou" else "a ") + words


def make_groups(spec: TopicSpec, rng: random.Random, n_groups: int, qids: list[int]) -> list[list[Entity]]:
    """Groups of four entities sharing one name, with distinct kinds, attributes and background colours."""
    names = sorted({spec.name_format.format(*words) for words in _word_product(spec.name_words)})
    if n_groups > len(names):
        raise ValueError(
            f"The sample vocabulary has {len(names)} names but {n_groups} groups were asked for; "
            "pass a smaller --mentions-per-topic."
        )
    groups = []
    for name in rng.sample(names, n_groups):
        kinds, attributes = rng.sample(spec.kinds, 4), rng.sample(spec.attributes, 4)
        colours = rng.sample(sorted(PALETTE), 4)
        group = []
        for kind, attribute, colour in zip(kinds, attributes, colours, strict=True):
            qids[0] += 1
            group.append(Entity(
                qid=f"Q{qids[0] - 1}", name=name, kind=kind, attribute=attribute, year=rng.randint(*spec.years),
                person=rng.choice(PEOPLE), colour=colour, shape=rng.choice(SHAPES), count=rng.randint(1, 3),
                extension=rng.choice(EXTENSIONS),
            ))  # fmt: skip
        if rng.random() < 0.25:  # names that nearly share: one member, gold or not, carries a qualifier
            qualified = rng.choice(group)
            qualified.name = spec.qualifier.format(name=name)
        groups.append(group)
    return groups


def _word_product(word_lists: tuple[tuple[str, ...], ...]) -> list[tuple[str, ...]]:
    combos: list[tuple[str, ...]] = [()]
    for words in word_lists:
        combos = [combo + (word,) for combo in combos for word in words]
    return combos


def make_surface(spec: TopicSpec, entity: Entity, alias: bool, rng: random.Random) -> str:
    """The mention's surface form: the entity name, or an alias of it."""
    if not alias:
        return entity.name
    return ALIASES[rng.choice(spec.aliases)](entity.name.split())


def make_sentence(spec: TopicSpec, gold: Entity, surface: str, rng: random.Random) -> str:
    """Two to four sentences of context; one holds the surface form, several share words with the description."""
    keep_kind, keep_attribute = rng.random() < 0.85, rng.random() < 0.85
    kind = gold.kind if keep_kind or not keep_attribute else spec.generic_kind
    attr_kind = f"{gold.attribute} {kind}" if keep_attribute else kind
    values = {
        "M": surface, "kind": kind, "attr_kind": attr_kind, "a_attr_kind": with_article(attr_kind),
        "a_kind": with_article(kind), "year": gold.year, "person": gold.person, "colour": gold.colour,
    }  # fmt: skip
    sentences = [template.format(**values) for template in rng.sample(spec.details, rng.randint(1, 2))]
    sentences.insert(0 if rng.random() < 0.7 else 1, rng.choice(spec.first_sentences).format(**values))
    if rng.random() < 0.4:  # the colour of the gold's picture, so mention text also links to entity images
        sentences.append(spec.colour_sentence.format(**values))
    if rng.random() < 0.2:  # a disambiguation note naming another kind: a deliberate false lead
        other = rng.choice([k for k in spec.kinds if k != gold.kind])
        sentences.append(f"It is not to be confused with the {other} of the same name.")
    return " ".join(sentences[:4]) + "\n"


def describe(spec: TopicSpec, entity: Entity) -> str:
    """The entity's description: kind, attribute and the visual signature in words."""
    attr_kind = f"{entity.attribute} {entity.kind}"
    return spec.description.format(year=entity.year, attr_kind=attr_kind, person=entity.person, sig=entity.signature())


def render(entity: Entity, size: int, shift: tuple[int, int] = (0, 0)) -> Image.Image:
    """Draw the entity's signature: `count` shapes in a row on its background colour."""
    image = Image.new("RGB", (size, size), PALETTE[entity.colour])
    draw = ImageDraw.Draw(image)
    fill = (0, 0, 0) if shape_colour_name(entity.colour) == "black" else (255, 255, 255)
    radius = max(2, size // 10)
    for index in range(entity.count):
        x = size * (index + 1) / (entity.count + 1) + shift[0]
        y = size / 2 + shift[1]
        box = (x - radius, y - radius, x + radius, y + radius)
        if entity.shape == "circle":
            draw.ellipse(box, fill=fill)
        elif entity.shape == "square":
            draw.rectangle(box, fill=fill)
        elif entity.shape == "triangle":
            draw.polygon([(x, y - radius), (x + radius, y + radius), (x - radius, y + radius)], fill=fill)
        else:
            half = max(1, radius // 2)
            draw.rectangle((x - radius, y - half, x + radius, y + half), fill=fill)
            draw.rectangle((x - half, y - radius, x + half, y + radius), fill=fill)
    return image


def related_rendering(entity: Entity, size: int, seed: Sequence[int]) -> Image.Image:
    """Same signature, slightly different picture: shifted by a pixel or two and with mild pixel noise."""
    rng = np.random.default_rng(list(seed))
    dx, dy = (int(v) for v in rng.choice([-2, -1, 1, 2], size=2))
    pixels = np.asarray(render(entity, size, shift=(dx, dy)), dtype=np.int16)
    pixels = pixels + rng.integers(-14, 15, size=pixels.shape, dtype=np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")


def encode(image: Image.Image, extension: str, jpeg_quality: int) -> bytes:
    """PNG or JPEG bytes by extension; fixed encoder settings keep the bytes identical across runs."""
    buffer = io.BytesIO()
    if extension.lower() == ".png":
        image.save(buffer, format="PNG", optimize=False)
    else:
        image.save(buffer, format="JPEG", quality=jpeg_quality, subsampling=0, optimize=False)
    return buffer.getvalue()


@dataclass(frozen=True)
class MentionPlan:
    """Where the gold goes, and whether the surface is an alias and the image the gold candidate's own file."""

    position: str  # "first", "elsewhere" or "absent"
    alias: bool
    same_image: bool
    n_candidates: int


def plan_mentions(config: SampleConfig, rng: random.Random) -> list[MentionPlan]:
    """Exact quotas of gold positions, aliases and image reuse, shuffled over the topic's mentions."""
    n = config.mentions_per_topic
    n_absent, n_elsewhere = round(n * config.gold_shares[2]), round(n * config.gold_shares[1])
    positions = ["absent"] * n_absent + ["elsewhere"] * n_elsewhere + ["first"] * (n - n_absent - n_elsewhere)
    rng.shuffle(positions)
    aliases = set(rng.sample(range(n), round(n * config.alias_share)))
    present = [i for i in range(n) if positions[i] != "absent"]
    same_image = set(rng.sample(present, round(len(present) * config.same_image_share)))
    two = set(rng.sample(present, min(config.two_candidate_mentions, len(present))))
    return [MentionPlan(positions[i], i in aliases, i in same_image, 2 if i in two else 3) for i in range(n)]


def pick_candidates(plan: MentionPlan, gold: Entity, group: list[Entity], rng: random.Random) -> list[Entity]:
    """Candidates in release order: gold first, gold elsewhere, or only distractors when the gold is absent."""
    others = [entity for entity in group if entity is not gold]
    if plan.position == "absent":
        return rng.sample(others, plan.n_candidates)
    distractors = rng.sample(others, plan.n_candidates - 1)
    index = 0 if plan.position == "first" else rng.randint(1, plan.n_candidates - 1)
    return distractors[:index] + [gold] + distractors[index:]


class TopicBuilder:
    """Builds the mentions of one topic; entity images are encoded once and copied into each mention folder."""

    def __init__(self, topic: str, topic_index: int, config: SampleConfig) -> None:
        self.topic, self.topic_index, self.config = topic, topic_index, config
        self.spec = TOPIC_SPECS[topic]
        self.rng = random.Random(config.seed * 1009 + topic_index)
        self._image_cache: dict[str, bytes] = {}

    def entity_image(self, entity: Entity) -> bytes:
        if entity.qid not in self._image_cache:
            image = render(entity, self.config.image_size)
            self._image_cache[entity.qid] = encode(image, entity.extension, self.config.jpeg_quality)
        return self._image_cache[entity.qid]

    def image_triple(self, folder: str, file_name: str, stem: str, extension: str) -> list[str]:
        """``[original file name, source URL, local path]`` as the release stores them."""
        local = f"/M3EL/{self.topic}_candidates_images/{folder}/{stem}{extension}"
        return [file_name, COMMONS_FILE_URL + quote(file_name), local]

    def original_name(self, entity: Entity, suffix: str = "") -> str:
        return f"{entity.name} ({entity.year}) {self.spec.file_noun}{suffix}{entity.extension}"

    def build(self, qids: list[int]) -> list[Mention]:
        """All mentions of the topic; ``qids`` is a one-item counter shared across topics."""
        plans = plan_mentions(self.config, self.rng)
        groups = make_groups(self.spec, self.rng, (len(plans) + 1) // 2, qids)
        return [self.build_mention(index, plan, groups[index // 2]) for index, plan in enumerate(plans)]

    def build_mention(self, index: int, plan: MentionPlan, group: list[Entity]) -> Mention:
        """One record with its candidates and the image files of its folder."""
        gold = group[index % 2]
        candidates = pick_candidates(plan, gold, group, self.rng)
        surface = make_surface(self.spec, gold, plan.alias, self.rng)
        folder = f"{surface}-{gold.qid}"
        files, candidate_records = {}, []
        for entity in candidates:
            triple = self.image_triple(folder, self.original_name(entity), entity.qid, entity.extension)
            files[triple[2].removeprefix("/M3EL/")] = self.entity_image(entity)
            candidate_records.append({
                "Qid": entity.qid, "name": entity.name, "description": describe(self.spec, entity), "image": triple,
            })  # fmt: skip
        if plan.position == "absent" or plan.same_image:
            # The release's mention image is usually the gold's own picture; absent golds get it too.
            image = self.image_triple(folder, self.original_name(gold), gold.qid, gold.extension)
            files[image[2].removeprefix("/M3EL/")] = self.entity_image(gold)
        else:
            image = self.image_triple(folder, self.original_name(gold, " 2"), f"{gold.qid}_mention", gold.extension)
            seed = (self.config.seed, self.topic_index, index)
            picture = related_rendering(gold, self.config.image_size, seed=seed)
            files[image[2].removeprefix("/M3EL/")] = encode(picture, gold.extension, self.config.jpeg_quality)
        record = {
            "Qid": gold.qid, "name": surface, "description": describe(self.spec, gold),
            "sentence": make_sentence(self.spec, gold, surface, self.rng), "image": image,
            "candidates": candidate_records,
        }  # fmt: skip
        return Mention(record=record, files=files)


def record_file(topic: str, records: list[dict]) -> tuple[str, bytes]:
    """``<topic>.jsonl`` for `JSONL_TOPICS`, else ``<topic>.json`` (an array, indent 1)."""
    if topic in JSONL_TOPICS:
        text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        return f"{topic}.jsonl", text.encode("utf-8")
    return f"{topic}.json", (json.dumps(records, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def summarize(records: Sequence[dict]) -> dict[str, float]:
    """Shares of gold positions, and among gold-present mentions of aliases and of mention images that are the
    gold candidate's own file (the gold's name and image are only known when it is a candidate)."""
    first = elsewhere = absent = alias = same_image = 0
    for record in records:
        qids = [candidate["Qid"] for candidate in record["candidates"]]
        first += qids[0] == record["Qid"]
        elsewhere += record["Qid"] in qids[1:]
        absent += record["Qid"] not in qids
        gold_paths = [c["image"][2] for c in record["candidates"] if c["Qid"] == record["Qid"]]
        same_image += record["image"][2] in gold_paths
        alias += any(c["name"] != record["name"] for c in record["candidates"] if c["Qid"] == record["Qid"])
    n, present = max(1, len(records)), max(1, first + elsewhere)
    return {
        "mentions": len(records), "gold_first": first / n, "gold_elsewhere": elsewhere / n,
        "gold_absent": absent / n, "surface_differs": alias / present, "same_image_file": same_image / present,
    }  # fmt: skip


def readme(config: SampleConfig, counts: dict[str, int]) -> bytes:
    """A short card: what the sample is, that it is synthetic, and how to regenerate it."""
    lines = [
        README_MARKER,
        "",
        "A small **synthetic** sample in the raw format of the original M3EL release archive; this folder stands",
        "for the archive's `/M3EL/` root. It is generated, not real M3EL data: entities, QIDs (Q9000001 onwards),",
        "sentences and images are invented, but built so that a model can learn to link them (candidates share",
        "their name, the gold description shares its words with the mention's context, and each image shows the",
        "colour and shapes that its description names).",
        "",
        "- records: `<topic>.json` (JSON arrays) and `<topic>.jsonl` (JSON Lines), one file per topic",
        "- images: `<topic>_candidates_images/<mention name>-<gold Qid>/<Qid>.<ext>`; a mention image that is not",
        "  the gold candidate's own file is stored as `<gold Qid>_mention.<ext>` in the same folder",
        "- mentions per topic: " + ", ".join(f"{topic} {count}" for topic, count in counts.items()),
        "",
        "Regenerate it (byte-identical; the tests check that it is fresh) with:",
        "",
        "```bash",
        f"python scripts/make_sample.py --mentions-per-topic {config.mentions_per_topic} --seed {config.seed} "
        f"--image-size {config.image_size}",
        "```",
        "",
    ]
    return "\n".join(lines).encode("utf-8")


def generate(config: SampleConfig) -> dict[str, bytes]:
    """Every file of the sample, keyed by its path relative to the output folder."""
    files: dict[str, bytes] = {}
    counts: dict[str, int] = {}
    qids = [QID_START]
    for topic_index, topic in enumerate(config.topics):
        mentions = TopicBuilder(topic, topic_index, config).build(qids)
        records = [mention.record for mention in mentions]
        for mention in mentions:
            files.update(mention.files)
        name, data = record_file(topic, records)
        files[name] = data
        counts[topic] = len(records)
        logger.info("%s: %s", topic, ", ".join(f"{k} {v:.3g}" for k, v in summarize(records).items()))
    files["README.md"] = readme(config, counts)
    return files


def write_atomically(files: dict[str, bytes], out: Path) -> None:
    """Write into a temporary sibling folder, then swap it in place of ``out``."""
    if out.exists() and any(out.iterdir()):
        card = out / "README.md"
        if not card.is_file() or not card.read_text(encoding="utf-8").startswith(README_MARKER):
            raise ValueError(
                f"{out} exists and is not a generated sample (no README.md starting with "
                f"{README_MARKER!r}); pass an empty or new folder as --out."
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for relative, data in sorted(files.items()):
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        old = out.with_name(f".{out.name}-old")
        if out.exists():
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def parse_args(argv: Sequence[str] | None) -> SampleConfig:
    """Command-line arguments as a `SampleConfig`."""
    parser = argparse.ArgumentParser(description="Generate the synthetic M3EL sample release.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to (re)write (the /M3EL/ root)")
    parser.add_argument("--mentions-per-topic", type=int, default=60, help="mentions per topic")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    parser.add_argument("--image-size", type=int, default=32, help="side of the square images in pixels")
    args = parser.parse_args(argv)
    return SampleConfig(
        out=args.out, mentions_per_topic=args.mentions_per_topic, seed=args.seed, image_size=args.image_size
    )


def main(argv: Sequence[str] | None = None) -> Path:
    """Generate the sample into ``--out`` and return that folder."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = parse_args(argv)
    files = generate(config)
    write_atomically(files, config.out)
    size = sum(len(data) for data in files.values())
    logger.info("Wrote %d files (%.2f MB) to %s", len(files), size / 1e6, config.out)
    return config.out


if __name__ == "__main__":
    main()
