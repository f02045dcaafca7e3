from m3el_dataset.constants import TEXT_FORMAT_TEMPLATES, TEXT_FORMATS
from m3el_dataset.text_formats import (
    collapse_whitespace,
    entity_text,
    format_mention_texts,
    mention_parts,
    sentence_with_mention,
    split_sentences,
)

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


def test_template_parts_name_each_part_in_order():
    from m3el_dataset.text_formats import template_parts

    assert template_parts("S1-M-D") == ["S1", "M", "D"] and template_parts("M-S") == ["M", "S"]
    assert template_parts("S") == ["S"]
