"""The one owner of texts (`m3el_dataset.text_formats`): parsing, rendering, fitting, and every reader agreeing."""

import logging

import datasets
import pytest
from release_fixtures import small_release
from tiny_clip import MAX_TEXT_TOKENS, tiny_processor

from m3el_benchmark.evaluation.data import load_kb, load_mentions
from m3el_benchmark.training.arguments import DataArguments
from m3el_benchmark.training.data import MentionEntityPairs
from m3el_dataset.constants import TEXT_FORMAT_TEMPLATES, TEXT_FORMATS
from m3el_dataset.export import ExportConfig, export_release
from m3el_dataset.rows import MENTIONS_CONFIG, text_column, undecoded_images
from m3el_dataset.text_formats import (
    collapse_whitespace,
    entity_text,
    fit_mention_texts,
    format_mention_texts,
    formats_with_parts,
    mention_parts,
    mention_text,
    sentence_before_mention,
    sentence_with_mention,
    split_sentences,
)
from modeling_clip_nd import tokenize_texts

SENTENCE = "  Kansas Saloon Smashers is a 1901 film.\nDirected by Edwin S. Porter, it mocks  Carrie Nation. It ends.\n"


def test_collapse_whitespace():
    assert collapse_whitespace(" a \n\t b  c \n") == "a b c"


def test_split_sentences_keeps_initials_and_abbreviations():
    assert split_sentences("Dr. No met Edwin S. Porter. The U.S. Army came! Did it? Yes") == [
        "Dr. No met Edwin S. Porter.",
        "The U.S. Army came!",
        "Did it?",
        "Yes",
    ]


def test_a_sentence_ending_in_a_number_or_small_word_ends():
    assert split_sentences("He played in Toy Story 2. Woody is a toy. He scored 5. Then a. Then b.") == [
        "He played in Toy Story 2.",
        "Woody is a toy.",
        "He scored 5.",
        "Then a.",
        "Then b.",
    ]
    assert sentence_with_mention("The film starred Tom Hanks. He played in Toy Story 2. Woody is a toy.", "Woody") == (
        "Woody is a toy."
    )


def test_s1_is_first_sentence_containing_mention_case_insensitively():
    assert sentence_with_mention(SENTENCE, "carrie nation") == "Directed by Edwin S. Porter, it mocks Carrie Nation."
    assert sentence_with_mention(SENTENCE, "Kansas") == "Kansas Saloon Smashers is a 1901 film."


@pytest.mark.parametrize(
    ("context", "mention", "expected"),
    [
        # "Arkansas" holds "kansas" as a substring only: the later sentence with the whole word wins.
        ("She moved to Arkansas. Kansas is flat. It ends.", "Kansas", "Kansas is flat."),
        ("She moved to Arkansas. KANSAS is flat.", "kansas", "KANSAS is flat."),  # case-insensitive
        ("Arkansas is south. Kansas's wheat grows.", "Kansas", "Kansas's wheat grows."),  # punctuation is a boundary
        ("Arkansas is south. It rains.", "Kansas", "Arkansas is south."),  # no whole word: the substring
        ("It rains. Kansasville is small.", "Kansas", "Kansasville is small."),
        ("Intro. The U.S. Army came.", "U.S.", "The U.S. Army came."),  # a mention ending in a period
        ("Our plan_b works. The plan wins.", "plan", "The plan wins."),  # "_" is part of a word
        ("Nothing here. Nor here.", "Kansas", "Nothing here."),  # neither: the first sentence
    ],
)
def test_s1_prefers_the_mention_as_a_whole_word(context, mention, expected):
    assert sentence_with_mention(context, mention) == expected


def test_s1_falls_back_to_first_sentence():
    assert sentence_with_mention(SENTENCE, "Nobody") == "Kansas Saloon Smashers is a 1901 film."


def test_templates_are_exactly_the_issue_templates():
    assert TEXT_FORMATS == ("S1", "S", "M-S1", "M-S", "S1-M", "S-M", "S1-M-D", "S-M-D")
    parts = mention_parts(" Carrie  Nation", SENTENCE, " activist\n")
    s = "Kansas Saloon Smashers is a 1901 film. Directed by Edwin S. Porter, it mocks Carrie Nation. It ends."
    s1 = "Directed by Edwin S. Porter, it mocks Carrie Nation."
    assert parts == {"M": "Carrie Nation", "S": s, "S1": s1, "D": "activist"}
    assert format_mention_texts(parts) == {
        "S1": s1,
        "S": s,
        "M-S1": f"Carrie Nation: {s1}",
        "M-S": f"Carrie Nation: {s}",
        "S1-M": f"{s1} Carrie Nation",
        "S-M": f"{s} Carrie Nation",
        "S1-M-D": f"{s1} Carrie Nation: activist",
        "S-M-D": f"{s} Carrie Nation: activist",
    }
    assert set(TEXT_FORMAT_TEMPLATES) == set(format_mention_texts(parts))


def test_entity_text():
    assert entity_text("Kansas", "American rock\nband") == "Kansas: American rock band"


def test_entity_text_without_a_description_is_the_name_alone():
    assert entity_text("Detroit Lions", "") == "Detroit Lions"  # not "Detroit Lions: "
    assert entity_text("Detroit Lions", " \n ") == "Detroit Lions"  # white space only is no description
    assert entity_text("", "American football team") == "American football team"
    assert entity_text("", "") == ""


def test_template_parts_name_each_part_in_order():
    from m3el_dataset.text_formats import template_parts

    assert template_parts("S1-M-D") == ["S1", "M", "D"] and template_parts("M-S") == ["M", "S"]
    assert template_parts("S") == ["S"]


def test_entity_text_drops_parts_for_aug_t():
    name, description = "Kansas ", "American rock\nband"
    assert entity_text(name, description, with_name=False) == "American rock band"
    assert entity_text(name, description, with_description=False) == "Kansas"
    assert entity_text(name, description, with_name=False, with_description=False) == ""


def test_formats_with_parts_derive_s1_from_s():
    assert formats_with_parts({"M", "S", "D"}) == TEXT_FORMATS
    assert formats_with_parts({"M", "S"}) == ("S1", "S", "M-S1", "M-S", "S1-M", "S-M")
    assert formats_with_parts({"S"}) == ("S1", "S")
    assert formats_with_parts(set()) == ()


def _render(text_format, parts):
    return [mention_text(text_format, item) for item in parts]


def test_mention_after_a_long_sentence_is_kept(caplog):
    processor = tiny_processor()
    parts = [
        {"S": "word " * 40, "M": "Paris", "D": "capital of France"},
        {"S": "short context", "M": "Lyon", "D": "a city"},
    ]
    given = _render("S-M-D", parts)
    with caplog.at_level(logging.WARNING):
        texts = fit_mention_texts(processor, "S-M-D", given, parts, MAX_TEXT_TOKENS)
    assert texts[1] == "short context Lyon: a city"
    assert texts[0].endswith("Paris: capital of France") and texts[0].startswith("word word")
    assert len(processor.tokenizer(texts[0])["input_ids"]) <= MAX_TEXT_TOKENS
    assert [record.getMessage() for record in caplog.records if "shortened" in record.getMessage()][0].startswith(
        "1 of 2"
    )

    def tokenized(texts: list[str]) -> str:
        tokens = tokenize_texts(processor, texts)["input_ids"][0]
        return processor.tokenizer.decode(tokens, skip_special_tokens=True).replace(" ", "")

    assert "paris:capitaloffrance" in tokenized(texts)
    # Without the option, the mention at the end is cut off by ordinary truncation.
    assert "paris" not in tokenized(fit_mention_texts(processor, "S-M-D", given, parts, MAX_TEXT_TOKENS, False))


def test_mention_first_formats_are_left_alone():
    parts = [{"S1": "word " * 40, "M": "Paris"}]
    fitted = fit_mention_texts(tiny_processor(), "M-S1", _render("M-S1", parts), parts, MAX_TEXT_TOKENS)
    assert fitted == [f"Paris: {'word ' * 40}"]


def test_every_text_format_is_understood():
    for name in TEXT_FORMAT_TEMPLATES:
        expected = name.split("-")[0] if name.endswith("-M") or "-M-" in name else None
        assert sentence_before_mention(name) == expected, name


def test_fit_mention_texts_names_a_missing_part():
    with pytest.raises(ValueError, match="'S1'"):
        fit_mention_texts(tiny_processor(), "S1-M", ["Paris"], [{"M": "Paris"}], MAX_TEXT_TOKENS)


# ---------------------------------------------------------------- export, training and benchmark agree

FIXTURE_QID = "Q4242"
FIXTURE = {
    "name": "Carrie  Nation",
    "sentence": "Kansas Saloon Smashers is a 1901 film.\n Directed by Edwin S. Porter, it mocks  Carrie Nation. "
    "It ends.",
    "description": "American\ttemperance  activist",
    "candidates": (
        ("Q18151305", "Kansas Saloon  Smashers", "1901 film by\nEdwin Stanton Porter"),
        (FIXTURE_QID, "Carrie Nation", "American temperance\n activist"),
        ("Q1558", " Kansas", "state of the United States of America "),
    ),
}


@pytest.fixture(scope="module")
def fixture_export(tmp_path_factory):
    """A small release plus one mention with irregular white space, exported; the mention's row id."""
    root = tmp_path_factory.mktemp("text_owner")
    release = small_release(root / "raw", per_topic=3)
    release.add("movies", qid=FIXTURE_QID, file="movies_fixture.json", **FIXTURE)
    release.write()
    return export_release(root / "raw", root / "hub", ExportConfig()).out_dir


def test_export_training_and_benchmark_see_the_owners_texts(fixture_export):
    parts = mention_parts(FIXTURE["name"], FIXTURE["sentence"], FIXTURE["description"])
    expected = {name: mention_text(name, parts) for name in TEXT_FORMATS}
    entities = {qid: entity_text(name, description) for qid, name, description in FIXTURE["candidates"]}
    assert expected["S1-M-D"] == "Directed by Edwin S. Porter, it mocks Carrie Nation. Carrie Nation: American " + (
        "temperance activist"
    )
    rows = undecoded_images(datasets.load_dataset(str(fixture_export), MENTIONS_CONFIG, split="movies"))
    position = rows["gold_qid"].index(FIXTURE_QID)
    row = rows[position]
    # The export.
    assert {name: row[text_column(name)] for name in TEXT_FORMATS} == expected
    assert row["candidate_texts"] == list(entities.values())
    # Training, in evaluation mode (no aug_T), in each format.
    for name in TEXT_FORMATS:
        item = MentionEntityPairs(rows, DataArguments(text_format=name), train=False)[position]
        assert item["mention"].text == expected[name], name
        assert [view.text for view in item["candidates"]] == list(entities.values())
    # The benchmark: the mentions' texts, the candidates' and the knowledge base's.
    mentions = load_mentions(str(fixture_export), ["movies"], topics=["movies"])
    index = mentions.gold_qids.index(FIXTURE_QID)
    assert {name: mentions.inputs.texts[mentions.mention_texts[name][index]] for name in TEXT_FORMATS} == expected
    assert [mentions.inputs.texts[key] for key in mentions.candidate_texts[index]] == list(entities.values())
    kb = load_kb(str(fixture_export), mentions.inputs)
    assert {qid: mentions.inputs.texts[kb.texts[kb.qids.index(qid)]] for qid in entities} == entities
