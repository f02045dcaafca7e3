"""Mention and entity texts: white-space normalisation, the sentence holding the mention (S1), the eight formats."""

from __future__ import annotations

import re
import string

from .constants import ENTITY_TEXT_TEMPLATE, TEXT_FORMAT_TEMPLATES

_WHITESPACE = re.compile(r"\s+")
# A sentence ends at ., ! or ? (optionally followed by closing quotes or brackets) and white space.
_SENTENCE_BOUNDARY = re.compile(r"[.!?][\"'\u201d\u2019)\]]*\s+")
# Tokens whose final period does not end a sentence ("Edwin S. Porter", "Dr. No", "U.S. Army").
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "no", "vol", "inc", "ltd", "co", "mt", "ft"}
)


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
    """S1: the first sentence of ``sentence`` that contains ``mention`` (case-insensitively), else the first one."""
    sentences = split_sentences(sentence)
    if not sentences:
        return ""
    needle = collapse_whitespace(mention).lower()
    if needle:
        for candidate in sentences:
            if needle in candidate.lower():
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


def template_parts(text_format: str) -> list[str]:
    """The parts a text format's template names, in order, e.g. ``["S1", "M", "D"]`` for ``S1-M-D``."""
    return [name for _, name, _, _ in string.Formatter().parse(TEXT_FORMAT_TEMPLATES[text_format]) if name]


def format_mention_texts(parts: dict[str, str]) -> dict[str, str]:
    """Render every text format of `TEXT_FORMAT_TEMPLATES` from the fields that `mention_parts` returns."""
    return {name: template.format(**parts) for name, template in TEXT_FORMAT_TEMPLATES.items()}


def entity_text(name: str, description: str) -> str:
    """Entity text Te: ``"{name}: {description}"``."""
    return ENTITY_TEXT_TEMPLATE.format(name=collapse_whitespace(name), description=collapse_whitespace(description))
