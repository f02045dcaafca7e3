"""The run's logging (`m3el_benchmark.run_logging`): each warning kind once with a count, records never glued onto a
bar, no empty or nested bars in a log file, ``-q``/``-v``, and every setting restored afterwards."""

from __future__ import annotations

import logging
import warnings

import pytest
import transformers.utils.logging as transformers_logging
from readable_log import log_problems

from m3el_benchmark import run, train
from m3el_benchmark.run_logging import (
    DEFAULT,
    QUIET,
    VERBOSE,
    progress_bar,
    run_logging,
    verbosity_from_flags,
)

ours = logging.getLogger("m3el_benchmark.test_run_logging")


def test_each_warning_kind_is_printed_once_and_counted_at_the_end(capsys):
    with run_logging(DEFAULT) as counter:
        for batch in range(5):
            ours.warning("%d of %d texts of batch %d were cut", batch + 1, 64, batch)
        ours.warning("a different kind")
        ours.error("an error is never held back")
        ours.error("an error is never held back")
    err = capsys.readouterr().err
    assert err.count("texts of batch") == 2  # the first record, and the summary line
    assert "1 of 64 texts of batch 0 were cut" in err and "2 of 64" not in err
    assert "test_run_logging warned 5 times in this run with this kind of message, only the first printed" in err
    assert err.count("a different kind") == 1 and err.count("an error is never held back") == 2
    assert counter.counts[("m3el_benchmark.test_run_logging", "%d of %d texts of batch %d were cut")] == 5
    assert log_problems(err) == []


def test_python_warnings_go_through_logging_and_count_once(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with run_logging(DEFAULT):
            for _ in range(3):
                warnings.warn("old API", FutureWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert err.count("FutureWarning: old API") == 2  # once, and once in the summary
    assert "py.warnings warned 3 times in this run" in err


def test_a_record_is_written_above_an_open_bar_not_glued_to_it(capsys):
    with run_logging(DEFAULT):
        bar = progress_bar(total=3, desc="Working", mininterval=0)
        bar.update(1)
        ours.info("a message while the bar is open")
        bar.update(2)
        bar.close()
    err = capsys.readouterr().err
    assert "a message while the bar is open" in err and "Working" in err
    assert log_problems(err) == []


def test_no_bar_for_zero_length_work_nor_nested_in_a_log_file_nor_when_quiet(capsys):
    with run_logging(DEFAULT):
        assert progress_bar([], desc="nothing to do").disable
        assert progress_bar(total=0).disable
        assert progress_bar([1], disable=True).disable  # another process
        outer = progress_bar([1, 2], desc="outer")
        assert not outer.disable
        assert progress_bar([1, 2], desc="inner").disable  # stderr is not a terminal here: no cursor moves
        outer.close()
    with run_logging(QUIET):
        assert progress_bar([1, 2], desc="quiet").disable
    assert "\x1b[A" not in capsys.readouterr().err


class _CountedIterable:
    """An iterable with a length that counts how often it is iterated (a DataLoader starts workers each time)."""

    def __init__(self, items: list[int]):
        self.items, self.iterations = items, 0

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        self.iterations += 1
        return iter(self.items)


@pytest.mark.parametrize("disable", [False, True])
def test_a_bar_iterates_its_iterable_once_and_keeps_its_length(disable, capsys):
    iterable = _CountedIterable([3, 1, 2])
    bar = progress_bar(iterable, desc="work", disable=disable)
    assert list(bar) == [3, 1, 2]
    assert iterable.iterations == 1  # tqdm.auto alone would iterate it twice, starting a DataLoader's workers twice
    assert bar.total == 3


def test_quiet_and_verbose_set_our_and_the_libraries_levels(capsys):
    with run_logging(QUIET):
        ours.info("info, quiet")
        ours.warning("warning, quiet")
    with run_logging(VERBOSE):
        ours.debug("debug, verbose")
        transformers_logging.get_logger("transformers.test").info("transformers info, verbose")
    with run_logging(DEFAULT):
        ours.debug("debug, default")
        ours.info("info, default")
        transformers_logging.get_logger("transformers.test").info("transformers info, default")
    err = capsys.readouterr().err
    assert "info, quiet" not in err and "warning, quiet" in err
    assert "debug, verbose" in err and "transformers info, verbose" in err
    assert "debug, default" not in err and "info, default" in err and "transformers info, default" not in err


def test_a_library_warning_is_printed_once_through_our_handler(capsys):
    """datasets writes through its own stderr handler and propagates too; transformers stops at its own."""
    with run_logging(DEFAULT):
        logging.getLogger("datasets.builder").warning("a datasets warning")
        transformers_logging.get_logger("transformers.modeling_utils").warning("a transformers warning")
    err = capsys.readouterr().err
    assert err.count("a datasets warning") == 1 and "WARNING datasets.builder: a datasets warning" in err
    assert err.count("a transformers warning") == 1 and "WARNING transformers.modeling_utils:" in err


def test_another_process_prints_errors_live_and_its_warnings_counted_at_the_end(capsys):
    """A line of another process would land on the main process's bar: its warnings wait for the end."""
    with run_logging(VERBOSE, main_process=False, rank=1):
        ours.info("info on rank 1")
        ours.warning("warning on rank 1")
        ours.warning("warning on rank 1")
        ours.error("error on rank 1")
        assert progress_bar([1, 2]).disable
        live = capsys.readouterr().err
        assert "warning on rank 1" not in live and "[rank 1] ERROR m3el_benchmark.test_run_logging: error on" in live
    err = capsys.readouterr().err
    assert "info on rank 1" not in err
    assert "[rank 1] WARNING m3el_benchmark.run_logging: m3el_benchmark.test_run_logging warned 2 times" in err
    assert "none printed live (only the main process prints them): 'warning on rank 1'" in err


def test_every_setting_is_restored_afterwards():
    transformers_root = logging.getLogger("transformers")
    before = (transformers_root.propagate, list(transformers_root.handlers), list(logging.getLogger().handlers),
              logging.getLogger("m3el_benchmark").level, transformers_logging.is_progress_bar_enabled())  # fmt: skip
    with run_logging(QUIET):
        assert not transformers_logging.is_progress_bar_enabled()
        assert getattr(logging, "_warnings_showwarning", None) is not None
    after = (transformers_root.propagate, list(transformers_root.handlers), list(logging.getLogger().handlers),
             logging.getLogger("m3el_benchmark").level, transformers_logging.is_progress_bar_enabled())  # fmt: skip
    assert after == before
    bar = progress_bar([1, 2])  # bars are on again outside a quiet run
    assert not bar.disable
    bar.close()


def test_verbose_with_quiet_is_refused():
    assert verbosity_from_flags(False, False) == DEFAULT
    assert verbosity_from_flags(True, False) == VERBOSE and verbosity_from_flags(False, True) == QUIET
    with pytest.raises(ValueError, match="--verbose and --quiet"):
        verbosity_from_flags(True, True)


FLAGS = [("-q", QUIET), ("--quiet", QUIET), ("-v", VERBOSE), ("--verbose", VERBOSE)]


@pytest.mark.parametrize(("flag", "verbosity"), FLAGS)
def test_both_commands_take_v_and_q(flag, verbosity):
    assert run.parse_arguments([flag]).verbosity == verbosity
    assert train.parse_arguments([flag])[2].verbosity == verbosity
    assert run.parse_arguments([]).verbosity == train.parse_arguments([])[2].verbosity == DEFAULT
    with pytest.raises(ValueError, match="--verbose and --quiet"):
        run.parse_arguments(["-v", "-q"])


@pytest.mark.parametrize("parse", [run.parse_arguments, train.parse_arguments])
def test_help_shows_v_and_q(parse, capsys):
    with pytest.raises(SystemExit):
        parse(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--verbose [VERBOSE], -v [VERBOSE]" in help_text and "--quiet [QUIET], -q [QUIET]" in help_text
    assert "warnings and errors only" in help_text


@pytest.mark.parametrize(("argv", "level"), [([], logging.INFO), (["-q"], logging.WARNING), (["-v"], logging.DEBUG)])
def test_dwe_plus_training_takes_v_and_q(argv, level, monkeypatch):
    from m3el_benchmark.systems.dwe_plus import training as dwe_training

    seen = []
    level_of_run = logging.getLogger("m3el_benchmark").getEffectiveLevel
    monkeypatch.setattr(dwe_training, "train", lambda args: seen.append(level_of_run()))
    dwe_training.main(argv)
    assert seen == [level]
    with pytest.raises(ValueError, match="--verbose and --quiet"):
        dwe_training.main(["-v", "-q"])
