"""YOLO oriented boxes, Ultralytics style (``yolo-obb``).

Layout: a dataset YAML in ROOT (``names:`` as a mapping index -> name, or a list),
``ROOT/images/[SPLIT/]NAME.ext``, ``ROOT/labels/[SPLIT/]NAME.txt``. A label line is
``CLASS x1 y1 x2 y2 x3 y3 x4 y4`` (the four corners, normalised). Lines of the plain box form
``CLASS cx cy w h`` also occur in published OBB datasets (DOTA8 has them) and are read as
axis-aligned boxes, as Ultralytics does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from shared.annotations import Dataset, ImageMeta, ObjectAnnotation
from shared.formats.base import AnnotationFormatError, four_corners
from shared.formats.yolo_layout import norm, parse_box, read_layout, write_layout

DEFAULT_YAML = "dataset.yaml"


def read(root: Path) -> Dataset:
    yaml_path = _find_yaml(root)
    try:
        config = yaml.safe_load(yaml_path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise AnnotationFormatError(yaml_path, line, f"invalid YAML: {exc}") from None
    names = config.get("names") if isinstance(config, dict) else None
    if isinstance(names, dict):
        try:
            indexed = {int(k): str(v) for k, v in names.items()}
        except ValueError:
            raise AnnotationFormatError(yaml_path, None, "names keys must be integers") from None
        if sorted(indexed) != list(range(len(indexed))):
            raise AnnotationFormatError(yaml_path, None, "names indices must be 0..N-1")
        class_names = [indexed[i] for i in range(len(indexed))]
    elif isinstance(names, list):
        class_names = [str(n) for n in names]
    else:
        raise AnnotationFormatError(yaml_path, None, "no 'names' mapping or list")
    return read_layout(root, "yolo-obb", class_names, {8: _parse_corners, 4: parse_box})


def _find_yaml(root: Path) -> Path:
    found = sorted(root.glob("*.yaml")) + sorted(root.glob("*.yml"))
    if not found:
        raise FileNotFoundError(f"yolo-obb: no dataset YAML (with 'names') in {root}")
    if len(found) > 1 and (root / DEFAULT_YAML).exists():
        return root / DEFAULT_YAML
    return found[0]


def _parse_corners(path: Path, line: int, v: list[float], meta: ImageMeta) -> np.ndarray:
    pts = np.array(v, dtype=np.float64).reshape(4, 2)
    return pts * np.array([meta.width, meta.height])


def _corner_line(obj: ObjectAnnotation, meta: ImageMeta) -> str:
    poly = four_corners(obj.polygon)
    return " ".join(f"{norm(x, meta.width)} {norm(y, meta.height)}" for x, y in poly)


def write(dataset: Dataset, root: Path, image_ext: str = ".jpg", jpeg_quality: int = 95) -> None:
    root.mkdir(parents=True, exist_ok=True)
    names = {i: n for i, n in enumerate(dataset.class_names)}
    (root / DEFAULT_YAML).write_text(yaml.safe_dump(
        {"path": ".", "train": "images", "val": "images", "names": names}, sort_keys=False))
    write_layout(dataset, root, image_ext, jpeg_quality, _corner_line)
