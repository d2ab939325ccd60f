"""Training scenes drawn from several real-dev sources at once, labelled through the class map.

Each source contributes the images of one part of its committed split
(``models/splits/<source>.json``) that the class map calls usable, one density channel per
class of the map, and per image the classes its labels cover (``lab.data.classes``); the
loss is masked for the others. Sources differ in size by two orders of magnitude (Airbus
scenes are 2560 px, a KIT frame at 0.5 m is 460 x 110 px), so each source gets a share of
the crops (``DEFAULT_SHARES``) and, inside a source, scenes are drawn by area, or, for a
share ``crowd`` of a source's crops, by how many labelled objects they hold: drawn by area
alone, a marina (two of them hold 305 of ships_google_earth's training boats) is drawn as
often as an empty sea, and the shipped ground counted the crowded images of its own
training splits at 0.16-0.43x of their truth (ships_google_earth, GDIT) while it counted
the sparse ones right.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lab.data.classes import ClassMap, load_class_map
from lab.data.label_cleaning import DEFAULT_IOU
from lab.data.realdev import REAL_DEV, load_real
from lab.training.data import Scene, load_scene
from shared.paths import PROJECT_ROOT

SPLITS_DIR = PROJECT_ROOT / "models" / "splits"
# Share of training crops per source (renormalised over the sources used).
DEFAULT_SHARES = {"airbus_aircraft": 0.2, "gdit_aerial_airport": 0.15, "nwpu_vhr10": 0.15,
                  "ships_google_earth": 0.15, "kit_cars": 0.08, "dota8": 0.07,
                  "vedai_partial": 0.1, "aerial_maritime_drone": 0.1}


@dataclass
class SourceScenes:
    scenes: list[Scene]
    weights: list[float]  # sampling weight per scene, with the source shares applied


def split_ids(source: str, splits_dir: Path = SPLITS_DIR) -> dict[str, list[str]]:
    path = Path(splits_dir) / f"{source}.json"
    if not path.exists():
        raise FileNotFoundError(f"no split for source {source!r} at {path}")
    return json.loads(path.read_text())


def parse_sources(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [n for n in names if n not in REAL_DEV]
    if unknown or not names:
        raise ValueError(f"unknown sources {unknown}; known: {', '.join(REAL_DEV)}")
    return names


def source_scenes(source: str, part: str, model_gsd: float, class_map: ClassMap,
                  root: str | Path | None = None, dedupe_iou: float = DEFAULT_IOU,
                  splits_dir: Path = SPLITS_DIR, progress=None,
                  detail_gsd: float | None = None) -> list[Scene]:
    """The usable images of one split part of a source, as multi-class training scenes
    (``detail_gsd``: ``lab.training.data.load_scene``)."""
    ids = set(split_ids(source, splits_dir).get(part, []))
    groups = [class_map.names_of(cls) for cls in class_map.classes]
    scenes = []
    images = [im for im in load_real(source, root).images if im.image_id in ids]
    for image in progress(images) if progress else images:
        if not class_map.usable(source, image):
            continue
        class_map.counts(image)  # refuses a class name the map does not know
        covered = class_map.labelled(source, image)
        scenes.append(load_scene(image, model_gsd, groups, dedupe_iou=dedupe_iou,
                                 labelled=[c in covered for c in class_map.classes],
                                 source=source, detail_gsd=detail_gsd))
    return scenes


def scene_weights(areas: list[int], objects: list[int], share: float, crowd: float
                  ) -> list[float]:
    """Per-scene weights of one source for ``CropStream`` (which multiplies them by area):
    the source's crops ``share``, a share ``crowd`` of them drawn by labelled object count
    and the rest by area (a source without labelled objects: by area alone)."""
    total_area, total_objects = max(sum(areas), 1), sum(objects)
    by_count = crowd if total_objects else 0.0
    return [share * ((1.0 - by_count) * area / total_area
                     + by_count * n / max(total_objects, 1)) / max(area, 1)
            for area, n in zip(areas, objects, strict=True)]


def multi_source(sources: list[str], part: str, model_gsd: float,
                 class_map: ClassMap | None = None, root: str | Path | None = None,
                 dedupe_iou: float = DEFAULT_IOU, shares: dict[str, float] | None = None,
                 progress=None, splits_dir: Path = SPLITS_DIR,
                 detail_gsd: float | None = None, crowd: float = 0.0) -> SourceScenes:
    """Scenes of ``part`` from every source, with per-scene weights that give each source
    its share of the crops, a share ``crowd`` of them drawn by labelled object count and
    the rest by area (``CropStream`` multiplies the weights by scene area)."""
    if not 0.0 <= crowd <= 1.0:
        raise ValueError(f"the crowd share is in [0, 1], got {crowd}")
    class_map = class_map or load_class_map()
    shares = shares or DEFAULT_SHARES
    scenes, weights = [], []
    for source in sources:
        found = source_scenes(source, part, model_gsd, class_map, root, dedupe_iou,
                              splits_dir, progress, detail_gsd)
        areas = [sc.pixels.shape[0] * sc.pixels.shape[1] for sc in found]
        scenes += found
        weights += scene_weights(areas, [sc.count for sc in found],
                                 shares.get(source, 0.1), crowd)
    return SourceScenes(scenes, weights)
