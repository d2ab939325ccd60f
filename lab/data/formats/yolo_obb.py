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

from lab.data.formats.base import four_corners
from lab.data.formats.yolo_layout import (
    find_yaml,
    norm,
    parse_box,
    read_layout,
    write_layout,
    yaml_class_names,
)
from shared.annotations import Dataset, ImageMeta, ObjectAnnotation

DEFAULT_YAML = "dataset.yaml"


def read(root: Path) -> Dataset:
    class_names = yaml_class_names(find_yaml(root, "yolo-obb", DEFAULT_YAML))
    return read_layout(root, "yolo-obb", class_names, {8: _parse_corners, 4: parse_box})


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
