"""``targetfuse report-counters``: the counters' tables in ``models/README.md``, from results.

The tables are generated from the JSON files ``targetfuse eval-sources`` writes (never typed
in): per source and class, per source (mask and confidence), and what an unknown GSD costs.
Each table sits between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` markers; the command
(``add_report_command``, as every ``report-*`` command) replaces what is between them, or with
``--check`` fails when the file differs from what the results give (a test runs the check).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from shared.paths import PROJECT_ROOT

README = PROJECT_ROOT / "models" / "README.md"
RESULTS = PROJECT_ROOT / "models" / "objects" / "eval"
# Targets of the counters issue, on test splits: ground relative CMAE per class (sources with
# at least MIN_OBJECTS objects of the class in the test split), ground per-tile MAE vs onboard.
# The counters issue's targets (issue 23): ground relative CMAE per class on sources whose
# test split holds MIN_OBJECTS of it, the ground's total within TARGET_TOTAL of the truth's,
# and its per-tile MAE TARGET_TILE_GAIN below the onboard counter's.
TARGET_CMAE = {"aircraft": 0.10, "ship": 0.20, "vehicle": 0.20}
MIN_OBJECTS = 30
TARGET_TOTAL = (0.7, 1.4)
TARGET_TILE_GAIN = 0.25


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def _num(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def per_class_table(result: dict) -> str:
    rows = ["| source | class | test images | objects | onboard rel. CMAE | ground rel. CMAE "
            "| ground total / truth | onboard tile MAE | ground tile MAE | ground tile MAE vs "
            "onboard | targets |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for src in result["sources"]:
        for cls, row in src["classes"].items():
            on, gr = row["onboard"], row["ground"]
            gain = 1 - gr["tile_mae"] / on["tile_mae"] if on["tile_mae"] else None
            judged = row["objects"] >= MIN_OBJECTS
            cmae_ok = gr["relative_cmae"] is not None and \
                gr["relative_cmae"] <= TARGET_CMAE[cls]
            tile_ok = gain is not None and gain >= TARGET_TILE_GAIN
            ratio = gr["total"] / row["objects"] if row["objects"] and "total" in gr else None
            verdict = (("CMAE met" if cmae_ok else "CMAE missed") if judged else
                       f"CMAE not judged (< {MIN_OBJECTS})") + \
                ("" if ratio is None else ", total met" if
                 TARGET_TOTAL[0] <= ratio <= TARGET_TOTAL[1] else ", total missed") + \
                (", tile MAE met" if tile_ok else ", tile MAE missed")
            if not row["objects"]:
                verdict = "no object of the class: false counts only"
            rows.append(f"| `{src['source']}` | {cls} | {row['images']} | {row['objects']} | "
                        f"{_pct(on['relative_cmae'])} | {_pct(gr['relative_cmae'])} | "
                        f"{'-' if ratio is None else f'{ratio:.2f}x'} | "
                        f"{_num(on['tile_mae'])} | {_num(gr['tile_mae'])} | "
                        f"{'-' if gain is None else f'{-100 * gain:+.0f} %'} | {verdict} |")
    return "\n".join(rows)


def per_source_table(result: dict) -> str:
    rows = ["| source | tiles | Jaccard onboard | Jaccard ground | confidence AUROC "
            "(all tiles) | AUROC (non-empty) | ECE | tiles right | ms/tile onboard | "
            "ms/tile ground |", "|---|---|---|---|---|---|---|---|---|---|"]
    for src in result["sources"]:
        c = src.get("confidence", {})
        rows.append(f"| `{src['source']}` | {src['tiles']} | {_num(src['jaccard']['onboard'])} "
                    f"| {_num(src['jaccard']['ground'])} | {_num(c.get('auroc'))} | "
                    f"{_num(c.get('auroc_nonempty'))} | {_num(c.get('ece'))} | "
                    f"{_pct(c.get('right_rate'))} | {src['ms_per_tile']['onboard']:.1f} | "
                    f"{src['ms_per_tile']['ground']:.1f} |")
    return "\n".join(rows)


def _roles_cell(row: dict | None) -> str:
    """'onboard / ground' relative CMAE of one (source, class) row, '-' without it."""
    if row is None:
        return "-"
    return (f"{_pct(row['onboard']['relative_cmae'])} / "
            f"{_pct(row.get('ground', {}).get('relative_cmae'))}")


def gsd_table(known: dict, dropped: dict, estimated: dict | None = None) -> str:
    """Relative CMAE with the GSD given, withheld, and (when scored) withheld but estimated
    from the pixels; onboard / ground in each cell."""
    head = "| source | class | GSD | GSD given (onboard / ground) | GSD withheld |"
    rows = [head + (" withheld, estimated from the image |" if estimated else ""),
            "|---|---|---|---|---|" + ("---|" if estimated else "")]
    by_source = {s["source"]: s for s in known["sources"]}
    est = {s["source"]: s for s in (estimated or {}).get("sources", [])}

    for src in dropped["sources"]:
        given = by_source.get(src["source"])
        if given is None:
            continue
        for cls, row in src["classes"].items():
            if cls not in given["classes"]:
                continue
            line = (f"| `{src['source']}` | {cls} | {src.get('scene_gsd_m', '-')} m | "
                    f"{_roles_cell(given['classes'][cls])} | {_roles_cell(row)} |")
            if estimated:
                e = est.get(src["source"], {})
                picks = _estimates(e.get("estimated_gsd_m") or {})
                row_e = e.get("classes", {}).get(cls)
                ratio = _ground_ratio(row_e, given["classes"][cls])
                line += (f" {_roles_cell(row_e)}{ratio} (estimates {picks}) |")
            rows.append(line)
    return "\n".join(rows)


def _ground_ratio(row: dict | None, given: dict) -> str:
    """'; ground 1.13x' the ground's relative CMAE against its figure with the GSD given
    (the counters issue's unknown-GSD target: within 1.5x), or '' where either is missing."""
    a = (row or {}).get("ground", {}).get("relative_cmae")
    b = given.get("ground", {}).get("relative_cmae")
    return f"; ground {a / b:.2f}x" if a is not None and b else ""


def _estimates(counts: dict[str, int]) -> str:
    """An eval's estimated GSDs (value -> images): each value when there are few, else
    their median and range."""
    if len(counts) <= 3:
        return ", ".join(f"{k} m: {v}" for k, v in counts.items())
    values = np.repeat([float(k) for k in counts if k != "none"],
                       [v for k, v in counts.items() if k != "none"])
    none = counts.get("none", 0)
    return (f"median {np.median(values):.2g} m, {values.min():.2g}-{values.max():.2g} m over "
            f"{len(values)} images" + (f", none on {none}" if none else ""))


def scale_fit_table(fit: dict) -> str:
    """``fit-scale-estimate``'s report: per source and split part, the factor between the
    regressed and the true GSD of each scene as delivered (median, worst, median signed:
    the bias) and over every GSD it was shown at (downsampled coarser)."""
    rows = ["| source | part | images | median factor | worst | bias | median factor, "
            "every GSD shown (scenes) |", "|---|---|---|---|---|---|---|"]
    for e in fit["report"]:
        d, a = e.get("delivered", {}), e.get("all_shown", {})
        rows.append(f"| `{e['source']}` | {e['part']} | {e['images']} | "
                    f"x{_num(d.get('median_factor'), 2)} | x{_num(d.get('worst_factor'), 2)} "
                    f"| x{_num(d.get('bias_factor'), 2)} | x{_num(a.get('median_factor'), 2)} "
                    f"({a.get('scenes', 0)}) |")
    return "\n".join(rows)


def gsd_choice_table(given: dict, choices: dict[str, dict]) -> str:
    """Validation with the GSD withheld, one column per estimate (the choice's evidence):
    onboard / ground relative CMAE per (source, class) with objects, beside the figure
    with the GSD given."""
    names = list(choices)
    rows = ["| source | class | objects | GSD given | " + " | ".join(names) + " |",
            "|---|---|---|---|" + "---|" * len(names)]
    by_name = {n: {s["source"]: s for s in r["sources"]} for n, r in choices.items()}

    for src in given["sources"]:
        for cls, row in src["classes"].items():
            if not row.get("objects"):
                continue
            picks = [by_name[n].get(src["source"], {}).get("classes", {}).get(cls)
                     for n in names]
            rows.append(f"| `{src['source']}` | {cls} | {row['objects']} | {_roles_cell(row)} | "
                        + " | ".join(_roles_cell(p) for p in picks) + " |")
    return "\n".join(rows)


LOSO_TARGET = 0.30  # ground relative CMAE on a source left out of training


def loso_table(known: dict | None, held_out: list[dict]) -> str:
    """Leave-one-source-out: each file scores a pair trained without its source, on that
    source's test split; beside it the full pair's in-source figure. The target (the
    counters issue's) is the ground's: relative CMAE <= 30 % on the left-out source."""
    rows = ["| held-out source | class | objects | trained on | onboard rel. CMAE, left out | "
            "in-source | ground rel. CMAE, left out | in-source | target (ground <= 30 %) |",
            "|---|---|---|---|---|---|---|---|---|"]
    inside = {s["source"]: s for s in (known or {}).get("sources", [])}
    for result in held_out:
        for src in result["sources"]:
            full = inside.get(src["source"], {}).get("classes", {})
            for cls, row in src["classes"].items():
                f = full.get(cls, {})
                out_on = row["onboard"]["relative_cmae"]
                out_gr = row.get("ground", {}).get("relative_cmae")
                verdict = "no ground counter" if out_gr is None else \
                    "met" if out_gr <= LOSO_TARGET else "missed"
                rows.append(
                    f"| `{src['source']}` | {cls} | {row['objects']} | "
                    f"{len(result.get('trained_on') or [])} sources, "
                    f"{result.get('schedule', '-')} | {_pct(out_on)} | "
                    f"{_pct(f.get('onboard', {}).get('relative_cmae'))} | {_pct(out_gr)} | "
                    f"{_pct(f.get('ground', {}).get('relative_cmae'))} | "
                    f"{verdict} |")
    return "\n".join(rows)


def schedule_table(full: dict, short: dict) -> str:
    """What the shortened schedule (of the leave-one-source-out runs) costs: the same sources
    trained on the short schedule against the full one, onboard counter, test splits."""
    rows = [f"| source | class | objects | full schedule ({full.get('schedule', '-')}) | "
            f"short schedule ({short.get('schedule', '-')}) | change |",
            "|---|---|---|---|---|---|"]
    inside = {s["source"]: s for s in full.get("sources", [])}
    for src in short["sources"]:
        for cls, row in src["classes"].items():
            f = inside.get(src["source"], {}).get("classes", {}).get(cls, {})
            a = f.get("onboard", {}).get("relative_cmae")
            b = row["onboard"]["relative_cmae"]
            change = "-" if a is None or b is None else f"{100 * (b - a):+.1f} points"
            rows.append(f"| `{src['source']}` | {cls} | {row['objects']} | {_pct(a)} | "
                        f"{_pct(b)} | {change} |")
    return "\n".join(rows)


def ground_options_table(result: dict) -> str:
    """The ground counter's options scored on a split (validation: what chooses)."""
    groups = sorted({g for o in result["options"].values() for g in o["groups"]})
    rows = ["| option | mean rel. CMAE | tile MAE vs shallow fp32 | ms/tile | " +
            " | ".join(f"`{g}` rel. CMAE / tile MAE" for g in groups) + " |",
            "|---" * (4 + len(groups)) + "|"]
    for name, o in result["options"].items():
        cells = [f"{_pct(o['groups'][g]['relative_cmae'])} / "
                 f"{_num(o['groups'][g]['tile_mae'])}" if g in o["groups"] else "-"
                 for g in groups]
        rows.append(f"| {name} | {_pct(o['mean_relative_cmae'])} | "
                    f"{_num(o['tile_mae_vs_shallow'])} | {o['ms_per_tile']:.1f} | " +
                    " | ".join(cells) + " |")
    return "\n".join(rows)


def count_scale_table(result: dict) -> str:
    parts = "validation and training" if result.get("train") else "validation"
    rows = [f"| counter | class | scale | {parts} groups | rel. CMAE before | after |",
            "|---|---|---|---|---|---|"]
    for role, fits in result["fits"].items():
        for cls, f in fits.items():
            rows.append(f"| {role} | {cls} | {f['scale']:.3f} | {f['groups']} | "
                        f"{_pct(f['fit_relative_cmae_before'])} | "
                        f"{_pct(f['fit_relative_cmae_after'])} |")
    return "\n".join(rows)


def _tile_mean(confs: list[dict], key: str, sub: str | None = None) -> float | None:
    """A per-source confidence figure averaged over sources, weighted by their tiles."""
    vals = [(c.get(key) if sub is None else c.get(key, {}).get(sub)) for c in confs]
    if any(v is None for v in vals):
        return None
    return sum(v * c["tiles"] for v, c in zip(vals, confs, strict=True)) / \
        sum(c["tiles"] for c in confs)


def ood_table(known: dict, unfamiliar: dict) -> str:
    """Onboard confidence on familiar test imagery against imagery left out of training."""
    rows = ["| imagery | tiles | tiles right | mean confidence | mean familiarity | "
            "tiles beyond the training range |", "|---|---|---|---|---|---|"]
    for label, result in (("test splits (all sources)", known),
                          ("left out of training: " + ", ".join(
                              s["source"] for s in unfamiliar["sources"]), unfamiliar)):
        confs = [s["confidence"] for s in result["sources"] if "confidence" in s]
        tiles = sum(c["tiles"] for c in confs)
        if not tiles:
            continue
        rows.append(f"| {label} | {tiles} | {_pct(_tile_mean(confs, 'right_rate'))} | "
                    f"{_num(_tile_mean(confs, 'mean'))} | "
                    f"{_num(_tile_mean(confs, 'familiarity', 'mean'))} | "
                    f"{_pct(_tile_mean(confs, 'familiarity', 'beyond_training_range'))} |")
    return "\n".join(rows)


def tables(results: Path = RESULTS) -> dict[str, str]:
    """Marker name -> generated markdown, for every result file present."""
    out = {}
    test = results / "test.json"
    if test.exists():
        known = json.loads(test.read_text())
        out["counters-per-class"] = per_class_table(known)
        out["counters-per-source"] = per_source_table(known)
        dropped = results / "test-gsd-withheld.json"
        estimated = results / "test-gsd-estimated.json"
        if dropped.exists():
            out["counters-gsd"] = gsd_table(
                known, json.loads(dropped.read_text()),
                json.loads(estimated.read_text()) if estimated.exists() else None)
    fit = results / "scale-fit.json"
    if fit.exists():
        out["counters-scale-fit"] = scale_fit_table(json.loads(fit.read_text()))
    given = results / "val-gsd-given.json"
    choices = {"nearest features": results / "val-gsd-estimated-nearest.json",
               "regressed": results / "val-gsd-estimated.json"}
    if given.exists() and all(p.exists() for p in choices.values()):
        out["counters-gsd-choice"] = gsd_choice_table(
            json.loads(given.read_text()),
            {n: json.loads(p.read_text()) for n, p in choices.items()})
    excluded = results / "excluded-infrared.json"
    if test.exists() and excluded.exists():
        out["counters-ood"] = ood_table(json.loads(test.read_text()),
                                        json.loads(excluded.read_text()))
    loso = sorted(results.glob("loso-*.json"))
    if loso:
        known = json.loads(test.read_text()) if test.exists() else None
        out["counters-loso"] = loso_table(known, [json.loads(p.read_text()) for p in loso])
    options = results / "ground-options-val.json"
    if options.exists():
        out["counters-ground-options"] = ground_options_table(json.loads(options.read_text()))
    scale = results / "count-scale-val.json"
    if scale.exists():
        out["counters-count-scale"] = count_scale_table(json.loads(scale.read_text()))
    short = results / "schedule-short.json"
    if test.exists() and short.exists():
        out["counters-schedule"] = schedule_table(json.loads(test.read_text()),
                                                  json.loads(short.read_text()))
    out.update(pair_tables(Path(results).parent.parent, Path(results)))
    return out


def render(text: str, generated: dict[str, str]) -> str:
    for name, table in generated.items():
        pattern = re.compile(rf"(<!-- {name}:begin -->\n)(?:.*?\n)?(<!-- {name}:end -->)",
                             re.S)
        if not pattern.search(text):
            raise ValueError(f"no <!-- {name}:begin/end --> markers in the README")
        text = pattern.sub(lambda m, t=table: m.group(1) + t + "\n" + m.group(2), text)
    return text


# The single-class pairs' cards: (results file of models/<pair>/eval/, what the row says).
PAIR_ROWS = [("test.json", "test, duplicate labels merged"),
             ("test-raw.json", "test, raw labels"), ("val.json", "val (chose the checkpoint)")]


def pair_table(folder: Path) -> str:
    """A single-class pair's card figures, from ``folder``'s eval-sources results: relative
    CMAE per split and label version, per-tile MAE, the mask's Jaccard index, and the
    onboard confidence."""
    rows = ["| figure (split) | shallow (onboard) | deep (ground) |", "|---|---|---|"]
    test = None
    for name, what in PAIR_ROWS:
        if not (folder / name).exists():
            continue
        for src in json.loads((folder / name).read_text())["sources"]:
            for cls, row in src["classes"].items():
                on, gr = row["onboard"], row["ground"]
                rows.append(f"| {cls} relative CMAE, {what} ({row['images']} images, "
                            f"{row['objects']} objects, mean truth {row['mean_truth']:.1f}) | "
                            f"**{_pct(on['relative_cmae'])}** (CMAE {on['cmae']:.2f}) | "
                            f"**{_pct(gr['relative_cmae'])}** (CMAE {gr['cmae']:.2f}) |")
            if name == "test.json":
                test = src
    if test is not None:
        for cls, row in test["classes"].items():
            rows.append(f"| {cls} per-tile MAE, test ({test['tiles']} tiles) | "
                        f"{_num(row['onboard']['tile_mae'])} | {_num(row['ground']['tile_mae'])} |")
        rows.append(f"| Jaccard index of the mask head, test | "
                    f"{_num(test['jaccard']['onboard'])} | {_num(test['jaccard']['ground'])} |")
        c = test.get("confidence") or {}
        rows.append(f"| confidence, test: AUROC all tiles / non-empty, ECE, tiles right | "
                    f"{_num(c.get('auroc'))} / {_num(c.get('auroc_nonempty'))}, "
                    f"{_num(c.get('ece'))}, {_pct(c.get('right_rate'))} | - |")
    return "\n".join(rows)


def pair_tables(models_dir: Path, skip: Path) -> dict[str, str]:
    """``card-<pair>`` for every shipped pair with results of its own (not ``skip``)."""
    return {f"card-{d.parent.name}": pair_table(d) for d in sorted(models_dir.glob("*/eval"))
            if d.resolve() != skip.resolve() and (d / "test.json").exists()}


def add_parser(sub: argparse._SubParsersAction) -> None:
    add_report_command(sub, "report-counters", "counters' tables in models/README.md", README,
                       RESULTS, tables)


def update_document(doc: Path, generated: dict[str, str], check: bool, command: str) -> int:
    """Write ``generated`` tables between their markers in ``doc``, or with ``check`` fail
    (ValueError) when the document differs from what they give."""
    text = doc.read_text()
    new = render(text, generated)
    if check:
        if new != text:
            raise ValueError(f"{doc} differs from the tables its results give; run "
                             f"targetfuse {command}")
        print(f"{doc} agrees with its results")
        return 0
    doc.write_text(new)
    print(f"wrote {doc}")
    return 0


def add_report_command(sub: argparse._SubParsersAction, name: str, what: str, doc: Path,
                       results: Path, make_tables) -> None:
    """A ``targetfuse <name>`` that regenerates (or ``--check``s) ``doc``'s generated
    tables from ``make_tables(results)``."""
    p = sub.add_parser(name, help=f"regenerate (or check) the {what}")
    p.add_argument("--doc", default=str(doc))
    p.add_argument("--results", default=str(results))
    p.add_argument("--check", action="store_true", help="fail when the document is stale")
    p.set_defaults(func=lambda args: update_document(
        Path(args.doc), make_tables(Path(args.results)), args.check, name))
