"""Deterministic train/val/test splits by image, keeping overlapping frames together.

Frames that overlap (a video or mosaic sequence, revisits of one footprint) must never be
split across train and test, or the test measures memory, not generalisation. Every image
gets a *group*: its ``meta.sequence`` when set (revisits and the metadata sidecar set it),
else a sequence inferred from the name (crops of one DOTA source image; numbered
frames), else the image itself. Groups, sorted
by name, are shuffled with a seeded generator and dealt out in order until each split holds
its fraction of the images; every split asked for a positive fraction gets at least one
group while groups remain.

With per-class object counts given (``targetfuse data split --balance-classes``: the
class map's aircraft / ship / vehicle), groups are dealt so that each split also holds its
fraction of every class's objects, not only of the images.

Sequence inference: names ``PREFIX<number>`` (after any Roboflow export suffix
``_jpg.rf.<hash>`` and any export-part prefix ``train__`` / ``valid__`` / ``test__``, so
that frames the export put in different parts still form one run) with the same prefix are
sorted by number and
cut where the gap between consecutive numbers exceeds ``gap_factor`` times the median gap.
For KIT (MOS74, 80, 86, 93, 155, 163, 171, 179: gaps 6-8 and one of 62) that gives the two
sequences MOS74-93 and MOS155-179.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import PurePosixPath

import numpy as np

from shared.annotations import AnnotatedImage

DEFAULT_FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}
_FRAME = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)$")
# DOTA devkit crops are named SOURCE__RATE__LEFT___UP; crops of one source overlap.
_DOTA_CROP = re.compile(r"^(?P<source>.+?)__\d+(?:\.\d+)?__\d+___\d+$")


# Roboflow exports rename ORIGINAL.jpg to ORIGINAL_jpg.rf.<hash>.jpg: the original name is
# what tells neighbouring frames.
_ROBOFLOW = re.compile(r"_(?:jpe?g|png|tiff?|bmp)\.rf\.[0-9a-f]+$", re.IGNORECASE)
# Files gathered from an export's part folders keep the part as a name prefix ("valid__").
_EXPORT_PART = re.compile(r"^(?:train|valid|val|test)__")


def infer_sequences(image_ids: list[str], gap_factor: float = 2.0) -> dict[str, str]:
    """Map each image id that overlaps others to a sequence name: crops of one DOTA source
    image share the source's name; numbered frames get ``PREFIX<first>-<last>``. Ids that
    fit neither, or stand alone, are left out."""
    by_prefix: dict[str, list[tuple[int, str]]] = defaultdict(list)
    out: dict[str, str] = {}
    for image_id in image_ids:
        path = PurePosixPath(image_id)
        crop = _DOTA_CROP.match(path.stem)
        if crop:
            out[image_id] = crop["source"]
            continue
        m = _FRAME.match(_EXPORT_PART.sub("", _ROBOFLOW.sub("", path.stem)))
        if m:
            key = (path.parent / m["prefix"]).as_posix()
            by_prefix[key].append((int(m["number"]), image_id))
    for prefix, frames in by_prefix.items():
        if len(frames) < 2:
            continue
        frames.sort()
        numbers = np.array([n for n, _ in frames])
        gaps = np.diff(numbers)
        limit = gap_factor * float(np.median(gaps)) if len(gaps) else 0.0
        runs: list[list[tuple[int, str]]] = [[frames[0]]]
        for gap, frame in zip(gaps, frames[1:], strict=True):
            if gap > limit:
                runs.append([])
            runs[-1].append(frame)
        for run in runs:
            if len(run) > 1:
                name = f"{PurePosixPath(prefix).name}{run[0][0]}-{run[-1][0]}"
                for _, image_id in run:
                    out[image_id] = name
    return out


def group_of(images: list[AnnotatedImage], infer: bool = True) -> dict[str, str]:
    """The split group of every image id (see the module docstring)."""
    inferred = infer_sequences([img.image_id for img in images]) if infer else {}
    return {img.image_id: img.meta.sequence or inferred.get(img.image_id) or img.image_id
            for img in images}


def split_images(images: list[AnnotatedImage], fractions: dict[str, float] | None = None,
                 seed: int = 0, infer: bool = True,
                 class_counts: Callable[[AnnotatedImage], np.ndarray] | None = None,
                 ) -> dict[str, list[AnnotatedImage]]:
    """Split ``images`` into named parts by group; deterministic for a given seed.

    With ``class_counts`` (an image -> objects per class), groups are dealt so that every
    split holds its fraction of each class's objects as well as of the images: most objects
    first, each to the split furthest below its targets (``_deal_balanced``)."""
    fractions = dict(DEFAULT_FRACTIONS if fractions is None else fractions)
    if not fractions or any(f < 0 for f in fractions.values()) or sum(fractions.values()) <= 0:
        raise ValueError(f"split fractions must be non-negative and not all zero: {fractions}")
    total = sum(fractions.values())
    groups: dict[str, list[AnnotatedImage]] = defaultdict(list)
    keys = group_of(images, infer)
    for img in images:
        groups[keys[img.image_id]].append(img)
    order = sorted(groups)
    rng = np.random.default_rng(seed)
    order = [order[i] for i in rng.permutation(len(order))]

    names = list(fractions)
    if class_counts is not None:
        return _deal_balanced(groups, order, names, {n: fractions[n] / total for n in names},
                              class_counts)
    targets = {n: fractions[n] / total * len(images) for n in names}
    parts: dict[str, list[AnnotatedImage]] = {n: [] for n in names}
    # First give each split with a positive share one group, then deal the rest greedily
    # to the split furthest below its target.
    remaining = list(order)
    for name in names:
        if targets[name] > 0 and remaining:
            parts[name].extend(groups[remaining.pop(0)])
    for key in remaining:
        name = max(names, key=lambda n: targets[n] - len(parts[n]))
        parts[name].extend(groups[key])
    for name in names:
        parts[name].sort(key=lambda img: img.image_id)
    return parts


def _deal_balanced(groups: dict[str, list[AnnotatedImage]], order: list[str], names: list[str],
                   share: dict[str, float], class_counts) -> dict[str, list[AnnotatedImage]]:
    """Groups with the most objects first (seeded order among equals); each goes to the
    split whose shortfall, summed over images and every class (as fractions of the totals),
    is largest. A split with a positive share gets a group first if none has one yet."""
    per_group = {k: np.sum([np.asarray(class_counts(img), float) for img in groups[k]], axis=0)
                 for k in order}
    sizes = {k: np.concatenate([[len(groups[k])], per_group[k]]) for k in order}
    totals = np.sum(list(sizes.values()), axis=0)
    present = totals > 0  # a class the dataset lacks weighs nothing
    sizes = {k: v[present] for k, v in sizes.items()}
    totals = totals[present]
    held = {n: np.zeros_like(totals) for n in names}
    parts: dict[str, list[AnnotatedImage]] = {n: [] for n in names}
    ranked = sorted(order, key=lambda k: -float(sizes[k][1:].sum()))  # stable: seeded ties
    for key in ranked:
        empty = [n for n in names if share[n] > 0 and not parts[n]]
        pool = empty or names
        name = max(pool, key=lambda n: float(np.sum((share[n] * totals - held[n]) / totals)))
        parts[name].extend(groups[key])
        held[name] += sizes[key]
    for name in names:
        parts[name].sort(key=lambda img: img.image_id)
    return parts
