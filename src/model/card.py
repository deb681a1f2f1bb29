"""The model card: what a registered version is, what it was made from, how well it does.

The evaluate step builds it (`build`) and writes card.json and card.md beside model.onnx, so
every copy of the version carries it; the lifecycle fills in what only it knows (the
version's name, the lineage its registry tags keep, the gate's verdict) and renders it again
with this file, run as a subprocess (src/model is never imported by mlops):

    python card.py render < card.json                          prints the card as Markdown
    python card.py compare < {"challenger": {...}, "champion": {...}}
                                                               prints both side by side,
                                                               the differences marked

Extension point: INTENDED_USE, the data scientist's short file of intended use and
limitations, quoted whole in every card.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

INTENDED_USE = Path(__file__).resolve().parent / "intended_use.md"
CARD_JSON, CARD_MARKDOWN = "card.json", "card.md"
TOP_FEATURES = 10  # the card lists the most important features
CHANGED = "🔶"  # marks a row where challenger and champion differ


def build(
    *,
    metrics: dict[str, float],
    cohorts: dict[str, dict],
    importances: dict[str, float],
    data: dict,
    profile: dict,
    lineage: dict[str, str],
    target: str,
) -> dict:
    """The card as the evaluate step knows it; `model` and `verdict` stay empty until the
    lifecycle registers and gates the version."""
    return {
        "model": None,
        "intended_use": INTENDED_USE.read_text() if INTENDED_USE.is_file() else "",
        "target": target,
        "data": {**data, "profile": profile},
        "metrics": metrics,
        "cohorts": cohorts,
        "importances": dict(list(importances.items())[:TOP_FEATURES]),
        "lineage": lineage,
        "verdict": None,
    }


def _shown(value: object) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("|", "\\|")


def facts(card: dict) -> dict[str, str]:
    """The card's comparable facts, one line each, in the order a reviewer reads them."""
    data, lineage = card.get("data") or {}, card.get("lineage") or {}
    verdict = card.get("verdict") or {}
    found = {"model": _shown(card.get("model"))}
    for metric, value in sorted((card.get("metrics") or {}).items()):
        found[f"metric {metric}"] = _shown(value)
    for cohort, table in sorted((card.get("cohorts") or {}).items()):
        for group, line in sorted(table.get("groups", {}).items()):
            found[f"{cohort}={group} rows (support)"] = f"{line['rows']} ({line['support']})"
            for metric, value in sorted(line.get("metrics", {}).items()):
                found[f"{cohort}={group} {metric}"] = _shown(value)
        for metric, gap in sorted(table.get("gaps", {}).items()):
            found[f"{cohort} gap {metric}"] = _shown(gap)
    found["data"] = _shown(data.get("asset_version"))
    found["data sha256"] = _shown(data.get("sha256"))
    found["data rows (train/test)"] = (
        f"{_shown(data.get('rows'))} ({_shown((data.get('profile') or {}).get('train_rows'))}"
        f"/{_shown((data.get('profile') or {}).get('test_rows'))})"
    )
    for key in ("commit", "job", "run", "artifact_sha256"):
        found[key.replace("_", " ")] = _shown(lineage.get(key))
    found["gate"] = _verdict_word(verdict)
    return found


def _verdict_word(verdict: dict) -> str:
    if not verdict:
        return "not gated yet"
    word = "passed" if verdict.get("passed") else "refused"
    when = f" ({verdict['time']})" if verdict.get("time") else ""
    return f"{word} for {verdict.get('environment', '?')}{when}"


def render(card: dict) -> str:
    """The card as Markdown."""
    data = card.get("data") or {}
    profile = data.get("profile") or {}
    lines = [f"# Model card: {card.get('model') or 'unregistered model'}", ""]
    if card.get("intended_use"):
        lines += [card["intended_use"].strip(), ""]
    lines += ["## Training data", ""]
    lines += [
        f"- version: {_shown(data.get('asset_version'))} (sha256 `{_shown(data.get('sha256'))}`)",
        f"- rows: {_shown(data.get('rows'))}; train {_shown(profile.get('train_rows'))}, "
        f"held out {_shown(profile.get('test_rows'))} (test fraction "
        f"{_shown(profile.get('test_fraction'))}, seed {_shown(profile.get('seed'))})",
    ]
    classes = profile.get("classes") or {}
    if classes:
        shown = ", ".join(f"{k}: {v}" for k, v in sorted(classes.items()))
        lines.append(f"- `{card.get('target')}` in the training rows: {shown}")
    for cohort, groups in sorted((profile.get("cohorts") or {}).items()):
        shown = ", ".join(f"{g}: {n}" for g, n in sorted(groups.items()))
        lines.append(f"- cohort `{cohort}` in the training rows: {shown}")
    metrics = card.get("metrics") or {}
    lines += ["", "## Metrics on the held-out rows", "", "| metric | value |", "| --- | --- |"]
    lines += [f"| {m} | {_shown(v)} |" for m, v in sorted(metrics.items())]
    for cohort, table in sorted((card.get("cohorts") or {}).items()):
        names = sorted(metrics)
        lines += ["", f"### Cohort `{cohort}`", ""]
        lines += ["| group | rows | support | " + " | ".join(names) + " |"]
        lines += ["| --- " * (3 + len(names)) + "|"]
        for group, line in sorted(table.get("groups", {}).items()):
            values = [_shown(line.get("metrics", {}).get(m)) for m in names]
            lines.append(f"| {group} | {line['rows']} | {line['support']} | {' | '.join(values)} |")
        gaps = [_shown(table.get("gaps", {}).get(m)) for m in names]
        lines.append(f"| largest gap | | | {' | '.join(gaps)} |")
    importances = card.get("importances") or {}
    if importances:
        lines += ["", "## Permutation importance (score lost when shuffled)", ""]
        lines += ["| feature | importance |", "| --- | --- |"]
        lines += [f"| {f} | {_shown(v)} |" for f, v in importances.items()]
    verdict = card.get("verdict") or {}
    lines += ["", "## Gate", "", f"- {_verdict_word(verdict)}"]
    lines += [f"  - {reason}" for reason in verdict.get("reasons", [])]
    lineage = card.get("lineage") or {}
    lines += ["", "## Lineage", ""]
    lines += [
        f"- {key.replace('_', ' ')}: `{_shown(lineage.get(key))}`"
        for key in ("commit", "job", "run", "data_sha256", "artifact_sha256")
    ]
    return "\n".join(lines) + "\n"


def compare(challenger: dict, champion: dict | None) -> str:
    """Both cards' facts side by side, each row where they differ marked; then both cards."""
    ours, theirs = facts(challenger), facts(champion) if champion else {}
    lines = [
        "| | challenger | champion |",
        "| --- | --- | --- |",
    ]
    for key in dict.fromkeys([*ours, *theirs]):
        mine, other = ours.get(key, "—"), theirs.get(key, "—")
        if champion and mine != other and key != "model":
            lines.append(f"| {CHANGED} **{key}** | **{mine}** | {other} |")
        else:
            lines.append(f"| {key} | {mine} | {other} |")
    lines += ["", f"{CHANGED} marks what differs from the champion.", ""]
    for label, card in (("challenger", challenger), ("champion", champion)):
        if card:
            # two levels down, so each card's headings sit under the section that holds them
            body = "\n".join(
                f"##{line}" if line.startswith("#") else line for line in render(card).splitlines()
            )
            lines += [f"<details><summary>{label}'s model card</summary>", "", body, "</details>"]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    try:
        given = json.load(sys.stdin)
        if argv == ["render"]:
            print(render(given), end="")
            return 0
        if argv == ["compare"]:
            print(compare(given["challenger"], given.get("champion")), end="")
            return 0
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        print(f"error: not a model card ({exc})", file=sys.stderr)
        return 2
    print("usage: card.py render|compare < JSON", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
