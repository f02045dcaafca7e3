"""Stage 1: reading the five topic sources and extracting mentions."""

from __future__ import annotations

import pytest
from pipeline_server import write_tiny_sources

from m3el_dataset.constants import TOPICS
from m3el_dataset.pipeline.sources import extract_mentions, load_source_mentions, wikipedia_title, write_mentions


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return write_tiny_sources(tmp_path_factory.mktemp("raw"))


def test_every_topic_has_a_reader(sources):
    assert set(sources) == set(TOPICS)
    for topic, path in sources.items():
        assert extract_mentions(topic, path), topic


def test_movies_and_person_carry_gold_links(sources):
    movies = extract_mentions("movies", sources["movies"])
    assert [(m.key, m.surface, m.gold_title) for m in movies[:2]] == [
        ("movies-000000-000", "Kansas Saloon Smashers", "Kansas Saloon Smashers"),
        ("movies-000001-000", "Kansas", "Kansas (1988 film)")]
    assert movies[0].context.startswith("Kansas Saloon Smashers is a 1901")
    (person,) = extract_mentions("person", sources["person"])
    assert person.gold_title == "Digby Morrell"  # from the DBpedia URI column


def test_books_and_common_need_disambiguation(sources):
    (book,) = extract_mentions("books", sources["books"])
    assert book.gold_title is None
    assert book.context == "Dune is a book by Frank Herbert, published by Chilton Books in 1965."
    (common,) = extract_mentions("common", sources["common"])
    assert (common.surface, common.gold_title) == ("Pancake", None)


def test_aida_tsv_skips_nil_and_repeats(sources):
    mentions = extract_mentions("sports", sources["sports"])
    assert [(m.surface, m.gold_title) for m in mentions] == [("Germany", "Germany"), ("Bonn", "Bonn")]
    assert "Germany call in Bonn ." in mentions[0].context


def test_missing_column_and_file_are_named(tmp_path):
    bad = tmp_path / "plots.csv"
    bad.write_text("Title,Plot\nA,B\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"movies source .*plots\.csv lacks the column\(s\) Wiki Page"):
        extract_mentions("movies", bad)
    with pytest.raises(FileNotFoundError, match="--source movies="):
        extract_mentions("movies", tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="Unknown topic 'film'"):
        extract_mentions("film", bad)


def test_written_mentions_round_trip(sources, tmp_path):
    assert write_mentions(tmp_path, "movies", sources["movies"]) == 5
    assert load_source_mentions(tmp_path, "movies") == extract_mentions("movies", sources["movies"])
    with pytest.raises(FileNotFoundError, match="run the 'sources' stage for books first"):
        load_source_mentions(tmp_path, "books")


@pytest.mark.parametrize(("link", "title"), [
    ("https://en.wikipedia.org/wiki/Kansas_(1988_film)", "Kansas (1988 film)"),
    ("<http://dbpedia.org/resource/Digby_Morrell>", "Digby Morrell"),
    ("https://en.wikipedia.org/wiki/Caf%C3%A9", "Café"),
    ("not a link", None),
    ("", None),
])
def test_wikipedia_title(link, title):
    assert wikipedia_title(link) == title
