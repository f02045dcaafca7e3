"""The report's error-analysis gallery: for each model and task, the seeded sample of mistakes `mistakes` kept
while scoring, each shown with the mention's text and image and every candidate's name, description, image and
score, the gold marked (or "gold not among candidates").

One text format is shown per task: the run's headline format where the task was scored in it, else the first
format it was scored in (image-only mentions have none).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from m3el_dataset.constants import parse_task

from ..m3el_accuracy.ranking_metrics import NO_GOLD
from .mistakes import GALLERY_SIZE, GalleryCandidate, GalleryEntry
from .scoring import NO_FORMAT

CSS = """
.model{border:1px solid #d0d7de;border-radius:6px;padding:.4rem .8rem;margin:.8rem 0}
.mistakes{display:flex;flex-direction:column;gap:.6rem;margin:.4rem 0 1rem}
.mistake{border:1px solid #eaeef2;border-radius:6px;padding:.5rem;background:#fbfcfd;display:flex;gap:.6rem;
 align-items:flex-start}
.mistake header{font-size:.8rem;color:#57606a;margin-bottom:.3rem}
.mistake .status{font-weight:600;color:#a40e26}.mention{flex:none;width:280px}
.mention .body{display:flex;gap:.5rem;align-items:flex-start}
.mention .text{max-height:6.5em;overflow:auto;white-space:pre-wrap;font-size:.8rem}
.thumb{width:96px;height:96px;object-fit:contain;background:#eee;border-radius:4px;flex:none}
.noimage{width:96px;height:96px;display:flex;align-items:center;justify-content:center;text-align:center;
 background:#f3f3f3;color:#888;font-size:.7rem;border-radius:4px;flex:none}
ol.candidates{list-style:none;display:flex;flex-wrap:wrap;gap:.5rem;padding:0;margin:0;flex:1}
.candidate{display:flex;gap:.4rem;width:262px;box-sizing:border-box;border:2px solid #eaeef2;border-radius:6px;
 padding:.3rem;background:#fff}
.candidate.gold{border-color:#1a7f37;background:#f0fff4}.candidate .name{font-weight:600}
.candidate .desc{font-size:.75rem;color:#57606a;max-height:6em;overflow:auto}
.candidate .score{font-variant-numeric:tabular-nums;font-size:.8rem}
.badge{display:inline-block;font-size:.7rem;border-radius:3px;padding:0 .3rem;margin-left:.2rem;color:#fff}
.badge.gold{background:#1a7f37}.badge.choice{background:#cf222e}.badge.tie{background:#9a6700}
"""
STYLE = f"<style>{CSS}</style>"


def esc(value: Any) -> str:
    """``value`` as HTML text, every special character escaped (quotes included, for attributes): the report's one
    escaping rule."""
    return html.escape(str(value), quote=True)


def _image(uri: str | None, note: str, alt: str) -> str:
    if uri:
        return f'<img class="thumb" src="{esc(uri)}" alt="{esc(alt)}">'
    return f'<div class="noimage">{esc(note or "no image")}</div>'


def compared(task: str) -> str:
    """What a task compares, in words: ``the mention's text against each candidate's image``."""
    spec = parse_task(task)

    def side(text: bool, image: bool) -> str:
        return "text and image" if text and image else "text" if text else "image"

    return f"the mention's {side(spec.mention_text, spec.mention_image)} against each candidate's " \
           f"{side(spec.entity_text, spec.entity_image)}"  # fmt: skip


def _status(entry: GalleryEntry) -> str:
    if entry.gold_rank == NO_GOLD:
        return "gold not among candidates"
    if entry.gold_rank > len(entry.candidates):
        return "not scored: the mention lacks an input this task needs (counted wrong)"
    return f"gold ranked {entry.gold_rank} of {len(entry.candidates)}"


def _candidate(candidate: GalleryCandidate, top: str) -> str:
    """One candidate; ``top`` is ``"choice"`` for the model's choice, ``"tie"`` for one of several tied first."""
    badges = '<span class="badge gold">gold</span>' if candidate.gold else ""
    badges += {"choice": '<span class="badge choice">model\'s choice</span>',
               "tie": '<span class="badge tie">tied top score</span>'}.get(top, "")  # fmt: skip
    score = "no score (an input is missing)" if candidate.score is None else f"score {candidate.score:.4f}"
    css = "candidate gold" if candidate.gold else "candidate"
    qid = f" <small>{esc(candidate.qid)}</small>" if candidate.qid else ""
    return (f'<li class="{css}">{_image(candidate.thumbnail, candidate.image_note, candidate.name)}<div>'
            f'<div class="name">{esc(candidate.name)}{qid}{badges}</div>'
            f'<div class="desc">{esc(candidate.description)}</div><div class="score">{esc(score)}</div>'
            "</div></li>")  # fmt: skip


def entry_html(entry: GalleryEntry) -> str:
    """One mistake: the mention (text and image), then its candidates in score order, the gold marked."""
    scores = [candidate.score for candidate in entry.candidates if candidate.score is not None]
    tied = scores.count(scores[0]) > 1 if scores else False  # no single choice: ties count against the gold

    def top(candidate: GalleryCandidate) -> str:
        if not scores or candidate.score != scores[0]:
            return ""
        return "tie" if tied else "choice"

    which = f"text ({entry.text_format})" if entry.text_format != NO_FORMAT else "words (not used: image-only task)"
    candidates = "".join(_candidate(candidate, top(candidate)) for candidate in entry.candidates)
    return (f'<article class="mistake" data-mention="{esc(entry.mention_id)}"><div class="mention"><header>'
            f'{esc(entry.mention_id)} · topic {esc(entry.topic)}<br><span class="status">{esc(_status(entry))}</span>'
            f'</header><div class="body">{_image(entry.thumbnail, entry.image_note, "mention image")}<div><small>'
            f'Mention {esc(which)}</small><div class="text">{esc(entry.mention_text)}</div></div></div></div>'
            f'<ol class="candidates">{candidates}</ol></article>')  # fmt: skip


def _shown(entries: Sequence[GalleryEntry], headline_format: str | None) -> dict[tuple, list[GalleryEntry]]:
    """Entries by (model, dataset, task) in one text format each (see the module docstring), in run order."""
    formats: dict[tuple, list[str]] = {}
    for entry in entries:
        formats.setdefault((entry.model, entry.dataset, entry.task), [])
        if entry.text_format not in formats[(entry.model, entry.dataset, entry.task)]:
            formats[(entry.model, entry.dataset, entry.task)].append(entry.text_format)
    chosen = {key: headline_format if headline_format in found else found[0] for key, found in formats.items()}
    shown: dict[tuple, list[GalleryEntry]] = {key: [] for key in chosen}
    for entry in entries:
        key = (entry.model, entry.dataset, entry.task)
        if entry.text_format == chosen[key]:
            shown[key].append(entry)
    return shown


def _without_mistakes(model: str, shown: dict[tuple, list], results: dict[str, Any]) -> list[str]:
    """The (dataset, task) of ``model``'s figures on candidates with no sampled mistake."""
    protocols = {d["name"]: d.get("protocol") for d in results.get("datasets", [])}
    scored = dict.fromkeys((r.get("dataset", ""), r["task"]) for r in results.get("results", [])
                           if r["model"] == model and protocols.get(r.get("dataset", "")) == "candidates")
    return [f"{dataset} · {task}" for dataset, task in scored if (model, dataset, task) not in shown]


def gallery_html(entries: Sequence[GalleryEntry], results: dict[str, Any]) -> str:
    """The gallery section's body: what was sampled and how, then per model and task its sampled mistakes."""
    run = results.get("run") or {}
    others = [d["name"] for d in results.get("datasets", []) if d.get("protocol") != "candidates"]
    lines = [STYLE, (
        f"<p>For each model and task, up to {GALLERY_SIZE} mistakes (the gold not ranked first) kept while the "
        f"mentions were scored, in an order drawn from the run's seed ({esc(run.get('seed'))}), the same for every "
        "model. Candidates are in the order the model ranked them, by the score it ranked by (a tie puts the gold "
        "last); a mention whose gold is not among its candidates is a mistake under <code>nil_policy: wrong</code> "
        "and left out under <code>exclude</code>, as in the figures. Images are small thumbnails.</p>")]  # fmt: skip
    if others:
        lines.append(f"<p>No gallery for {esc(', '.join(others))}: ranked against the whole knowledge base, not "
                     "against candidates.</p>")  # fmt: skip
    shown = _shown(entries, run.get("headline_format"))
    if not shown:
        lines.append("<p>No mistake to show: every scored mention's gold ranked first, or no dataset was ranked "
                     "against candidates.</p>")  # fmt: skip
    order = [model["name"] for model in results.get("models", [])]
    models = sorted({key[0] for key in shown}, key=lambda name: order.index(name) if name in order else len(order))
    for number, model in enumerate(models):
        count = sum(len(found) for key, found in shown.items() if key[0] == model)
        summary = f"{model}: {count} mistakes" + ("" if number == 0 else " (click to open)")
        lines.append(f'<details class="model"{" open" if number == 0 else ""}><summary>{esc(summary)}</summary>')
        without = _without_mistakes(model, shown, results)
        if without:
            lines.append(f'<p class="note">No mistake to show in {esc(", ".join(without))}.</p>')
        for (name, dataset, task), found in shown.items():
            if name != model:
                continue
            fmt = found[0].text_format if found else NO_FORMAT
            heading = f"{dataset} · {task}" + (f" ({fmt})" if fmt != NO_FORMAT else "") + f": {compared(task)}"
            lines.append(f"<h3>{esc(heading)}</h3>")
            lines.append('<div class="mistakes">' + "\n".join(map(entry_html, found)) + "</div>")
        lines.append("</details>")
    return "\n".join(lines)
