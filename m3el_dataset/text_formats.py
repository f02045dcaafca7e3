"""The one owner of mention and entity texts: the eight formats, their parts, the entity text and the fitting.

A mention text is a template over its parts: ``M`` (surface form), ``S`` (context), ``S1`` (the sentence of ``S``
holding the mention, derived here) and ``D`` (gold description). The export renders every format once
(`format_mention_texts`); training and the benchmark read those texts and, for a model with a short context, only
re-render the ones that do not fit (`fit_mention_texts`). `card`, `rows`, training and the benchmark ask this
module; nothing else parses a template. It imports neither transformers nor torch: a tokenizer is duck-typed.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Iterable, Mapping, Sequence

logger = logging.getLogger(__name__)

TEXT_FORMAT_TEMPLATES: dict[str, str] = {
    "S1": "{S1}",
    "S": "{S}",
    "M-S1": "{M}: {S1}",
    "M-S": "{M}: {S}",
    "S1-M": "{S1} {M}",
    "S-M": "{S} {M}",
    "S1-M-D": "{S1} {M}: {D}",
    "S-M-D": "{S} {M}: {D}",
}
"""Mention text formats. M = surface form, S = whole context, S1 = the sentence holding M, D = gold description."""

TEXT_FORMATS: tuple[str, ...] = tuple(TEXT_FORMAT_TEMPLATES)

ENTITY_TEXT_TEMPLATE = "{name}: {description}"
"""Entity text Te."""

MENTION_PART = "M"
"""The part holding the mention's surface form."""

SENTENCE_PARTS: tuple[str, ...] = ("S", "S1")
"""The parts holding the mention's context (the whole context, or the sentence holding the mention)."""

SOURCE_PARTS: frozenset[str] = frozenset({"M", "S", "D"})
"""The parts a source provides; ``S1`` is derived from ``S`` (`available_parts`)."""

_WHITESPACE = re.compile(r"\s+")
# A sentence ends at ., ! or ? (optionally followed by closing quotes or brackets) and white space.
_SENTENCE_BOUNDARY = re.compile(r"[.!?][\"'\u201d\u2019)\]]*\s+")
# Tokens whose final period does not end a sentence ("Edwin S. Porter", "Dr. No", "U.S. Army").
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "no", "vol", "inc", "ltd", "co", "mt", "ft"}
)


def check_text_format(text_format: str) -> str:
    """Return ``text_format`` if it is one of `TEXT_FORMATS`, else raise ``ValueError`` naming the valid ones."""
    if text_format not in TEXT_FORMAT_TEMPLATES:
        raise ValueError(f"Unknown text format {text_format!r}; choose one of {', '.join(TEXT_FORMATS)}.")
    return text_format


# ---------------------------------------------------------------- the parts


def collapse_whitespace(text: str) -> str:
    """Collapse every run of white space (newlines included) into one space and strip both ends."""
    return _WHITESPACE.sub(" ", text).strip()


def _ends_with_abbreviation(text: str) -> bool:
    last_token = text.rsplit(" ", 1)[-1].rstrip(".")
    if len(last_token) == 1:  # a capital letter is an initial ("S."); a digit ends a sentence ("Toy Story 2.")
        return last_token.isalpha() and last_token.isupper()
    # Dotted tokens are acronyms ("U.S.").
    return "." in last_token or last_token.lower() in _ABBREVIATIONS


def split_sentences(text: str) -> list[str]:
    """Split collapsed ``text`` into sentences with a small rule-based splitter (initials and abbreviations kept)."""
    text = collapse_whitespace(text)
    sentences: list[str] = []
    start = 0
    for boundary in _SENTENCE_BOUNDARY.finditer(text):
        candidate = text[start : boundary.end()].strip()
        if _ends_with_abbreviation(text[start : boundary.start() + 1]):
            continue
        sentences.append(candidate)
        start = boundary.end()
    if start < len(text):
        sentences.append(text[start:].strip())
    return [sentence for sentence in sentences if sentence]


def sentence_with_mention(sentence: str, mention: str) -> str:
    """S1: the first sentence of ``sentence`` holding ``mention`` as a whole word, else as a substring, else the first
    sentence (all case-insensitive).

    A whole word has no letter, digit or underscore right before or after it, so "Kansas" is found in "Kansas
    City" and in "Kansas's", never in "Arkansas"; the substring pass still finds "Kansas" in "Kansasville" when no
    sentence holds the whole word.
    """
    sentences = split_sentences(sentence)
    if not sentences:
        return ""
    mention = collapse_whitespace(mention)
    if mention:
        whole_word = re.compile(rf"(?<!\w){re.escape(mention)}(?!\w)", re.IGNORECASE)
        for matches in (whole_word.search, lambda candidate: mention.lower() in candidate.lower()):
            for candidate in sentences:
                if matches(candidate):
                    return candidate
    return sentences[0]


def mention_parts(name: str, sentence: str, description: str) -> dict[str, str]:
    """The template fields of a mention: ``M`` (surface form), ``S`` (context), ``S1`` and ``D`` (gold description)."""
    context = collapse_whitespace(sentence)
    return {
        "M": collapse_whitespace(name),
        "S": context,
        "S1": sentence_with_mention(context, name),
        "D": collapse_whitespace(description),
    }


def available_parts(source_parts: Iterable[str]) -> frozenset[str]:
    """The parts a source offering ``source_parts`` (among `SOURCE_PARTS`) can fill: ``S1`` comes with ``S``."""
    parts = set(source_parts)
    return frozenset(parts | {"S1"} if "S" in parts else parts)


# ---------------------------------------------------------------- the formats


def template_parts(text_format: str) -> list[str]:
    """The parts a text format's template names, in order, e.g. ``["S1", "M", "D"]`` for ``S1-M-D``."""
    template = TEXT_FORMAT_TEMPLATES[check_text_format(text_format)]
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def formats_with_parts(source_parts: Iterable[str]) -> tuple[str, ...]:
    """The text formats (in `TEXT_FORMATS` order) that a source offering ``source_parts`` can render."""
    parts = available_parts(source_parts)
    return tuple(name for name in TEXT_FORMATS if set(template_parts(name)) <= parts)


def sentence_before_mention(text_format: str) -> str | None:
    """The sentence part that precedes the mention in ``text_format`` (``"S"`` for ``S-M-D``), or None.

    In such a format the mention follows its sentence, so cutting a long text at the end would cut the mention off
    (see `fit_mention_texts`); formats that start with the mention, or have none, return None.
    """
    parts = template_parts(text_format)
    if MENTION_PART not in parts:
        return None
    return next((part for part in parts[: parts.index(MENTION_PART)] if part in SENTENCE_PARTS), None)


def mention_text(text_format: str, parts: Mapping[str, str]) -> str:
    """Render one mention text in ``text_format`` from its parts; ``ValueError`` names a missing part."""
    try:
        return TEXT_FORMAT_TEMPLATES[check_text_format(text_format)].format(**parts)
    except KeyError as error:
        raise ValueError(f"Text format {text_format!r} needs the part {error.args[0]!r}, which a mention lacks "
                         f"(it has {sorted(parts)}).") from None  # fmt: skip


def format_mention_texts(parts: Mapping[str, str]) -> dict[str, str]:
    """Render every text format of `TEXT_FORMAT_TEMPLATES` from the fields that `mention_parts` returns."""
    return {name: mention_text(name, parts) for name in TEXT_FORMATS}


def entity_text(name: str, description: str, *, with_name: bool = True, with_description: bool = True) -> str:
    """Entity text Te: ``"{name}: {description}"``; training's aug_T drops the name or the description (or both,
    giving ``""``) with ``with_name`` / ``with_description``.

    An entity without a description is its name alone (``"Detroit Lions"``, not ``"Detroit Lions: "``), one without
    a name its description alone: a separator with nothing on one side would be text the source never had.
    """
    name = collapse_whitespace(name) if with_name else ""
    description = collapse_whitespace(description) if with_description else ""
    if name and description:
        return ENTITY_TEXT_TEMPLATE.format(name=name, description=description)
    return name or description


# ---------------------------------------------------------------- fitting a model's context


def _num_tokens(tokenizer, text: str) -> int:
    """Number of tokens of ``text`` without special tokens (``verbose=False``: no per-text length warning)."""
    return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def _cut_points(tokenizer, text: str) -> list[int]:
    """Where ``text`` may be cut, in order: the end of each token, or of each word for a tokenizer that gives no
    offsets (a SentencePiece one, such as SigLIP's)."""
    try:
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        offsets = encoded.get("offset_mapping")
    except NotImplementedError:  # transformers' Python tokenizers refuse offsets
        offsets = None
    if offsets is None:
        return [match.end() for match in re.finditer(r"\S+", text)]
    return [end for _, end in offsets]


def _shorten_part(tokenizer, text_format: str, parts: Mapping[str, str], part: str, budget: int) -> str:
    """Cut ``parts[part]`` at a token (or word) boundary so that the rendered text has at most ``budget`` tokens."""
    rest = _num_tokens(tokenizer, mention_text(text_format, {**parts, part: ""}))
    cuts = _cut_points(tokenizer, parts[part])

    def shortened(keep: int) -> str:
        cut = cuts[keep - 1] if keep > 0 else 0
        return mention_text(text_format, {**parts, part: parts[part][:cut].rstrip()}).strip()

    # Each kept piece is at least one token, so at most budget - rest of them fit, which they usually do; but
    # re-tokenizing the joined text can differ at the seam (and a word is often several tokens): then search down
    # for the longest prefix that fits.
    low, high = 0, min(max(budget - rest, 0), len(cuts))
    if high == 0 or _num_tokens(tokenizer, shortened(high)) <= budget:
        return shortened(high)
    high -= 1
    while low < high:
        middle = (low + high + 1) // 2
        if _num_tokens(tokenizer, shortened(middle)) <= budget:
            low = middle
        else:
            high = middle - 1
    return shortened(low)


def fit_mention_texts(
    tokenizer,
    text_format: str,
    texts: Sequence[str],
    parts: Sequence[Mapping[str, str]],
    max_length: int,
    keep_mention: bool = True,
) -> list[str]:
    """The mention ``texts`` of ``text_format`` (as rendered, one per item of ``parts``), fitted to a model's context.

    In the ``-M`` formats the mention follows its sentence, so plain truncation would cut the mention off. With
    ``keep_mention`` (the default) a text longer than ``max_length`` tokens (counting the start and end tokens a
    CLIP tokenizer adds) is re-rendered from its parts with its sentence (``S`` or ``S1``) shortened at the end;
    what follows the mention (``D``) is only cut, by the model's tokenization, if the text still does not fit.
    The other texts, and every text of a format that starts with the mention, are returned as given. One warning
    per batch counts the shortened sentences. ``tokenizer`` is any callable with a Hugging Face tokenizer's
    interface (token offsets where it has them, else the sentence is cut between words), or a processor holding one
    as ``.tokenizer``.
    """
    texts = list(texts)
    if not texts:
        raise ValueError("Got an empty batch of mention texts; pass at least one.")
    part = sentence_before_mention(text_format)
    if not keep_mention or part is None:
        return texts
    parts = list(parts)
    if len(parts) != len(texts):
        raise ValueError(f"Got {len(texts)} mention texts but {len(parts)} mappings of parts; pass one per text.")
    missing = {name for item in parts for name in template_parts(text_format) if name not in item}
    if missing:
        raise ValueError(f"Text format {text_format!r} needs the parts {sorted(missing)}, which a mention lacks.")
    if max_length < 3:
        raise ValueError(f"max_length={max_length} leaves no room for text between the two special tokens.")
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    budget = max_length - 2  # room left by the start and end tokens
    shortened = 0
    for index, item in enumerate(parts):
        if _num_tokens(tokenizer, texts[index]) > budget:
            texts[index] = _shorten_part(tokenizer, text_format, item, part, budget)
            shortened += 1
    if shortened:
        logger.warning(
            "%d of %d mention texts did not fit in %d tokens; their %s was shortened so that the mention is kept.",
            shortened,
            len(texts),
            max_length,
            part,
        )
    return texts
