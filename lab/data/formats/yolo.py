"""YOLO axis-aligned boxes (``yolo``).

Layout: ``ROOT/classes.names`` (one class name a line, index = line order; without it, the
``names:`` list or mapping of a dataset YAML in ROOT, as Ultralytics and Roboflow exports
have in ``data.yaml``), ``ROOT/images/[SPLIT/]NAME.ext`` and ``ROOT/labels/[SPLIT/]NAME.txt``
with lines ``CLASS cx cy w h``, all normalised to [0, 1] by the image size.
"""

from __future__ import annotations

from pathlib import Path

from lab.data.formats.base import AnnotationFormatError
from lab.data.formats.yolo_layout import (
    norm,
    parse_box,
    read_layout,
    write_layout,
    yaml_class_names,
)
from shared.annotations import Dataset, ImageMeta, ObjectAnnotation

NAMES_FILE = "classes.names"
YAML_FILE = "data.yaml"


def read(root: Path) -> Dataset:
    names_path = root / NAMES_FILE
    if not names_path.exists():
        yamls = ([root / YAML_FILE] if (root / YAML_FILE).exists() else
                 sorted(root.glob("*.yaml")) + sorted(root.glob("*.yml")))
        if not yamls:
            raise FileNotFoundError(f"yolo: no {NAMES_FILE} or dataset YAML ({YAML_FILE}) "
                                    f"with 'names' in {root}")
        return read_layout(root, "yolo", yaml_class_names(yamls[0]), {4: parse_box})
    names = [line.strip() for line in names_path.read_text().splitlines()]
    while names and not names[-1]:
        names.pop()
    for i, name in enumerate(names, start=1):
        if not name:
            raise AnnotationFormatError(names_path, i, "empty class name")
    return read_layout(root, "yolo", names, {4: parse_box})


def _box_line(obj: ObjectAnnotation, meta: ImageMeta) -> str:
    xmin, ymin, xmax, ymax = obj.box
    return " ".join([norm((xmin + xmax) / 2, meta.width), norm((ymin + ymax) / 2, meta.height),
                     norm(xmax - xmin, meta.width), norm(ymax - ymin, meta.height)])


def write(dataset: Dataset, root: Path, image_ext: str = ".png", jpeg_quality: int = 95) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / NAMES_FILE).write_text("".join(n + "\n" for n in dataset.class_names))
    write_layout(dataset, root, image_ext, jpeg_quality, _box_line)
