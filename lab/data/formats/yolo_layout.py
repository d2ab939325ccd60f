"""The folder layout both YOLO formats share, and their line-by-line label parsing.

``ROOT/images/[SPLIT/]NAME.ext`` pairs with ``ROOT/labels/[SPLIT/]NAME.txt``; a missing
label file means an image with no objects (a background image, as in Ultralytics).
Each label line is ``CLASS_INDEX v1 v2 ...`` with coordinates normalised to [0, 1] by the
image width (x) and height (y).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from lab.data.formats.base import (
    AnnotationFormatError,
    check_in_image,
    image_label_pairs,
    load_sidecar,
    make_meta,
    output_name,
    parse_float,
    parse_int,
    write_sidecar,
)
from shared.annotations import AnnotatedImage, Dataset, ImageMeta, ObjectAnnotation
from shared.imageio import write_rgb

# Given the label file, line number, normalised values and image metadata, a parser returns
# the object's polygon in pixels.
LineParser = Callable[[Path, int, list[float], ImageMeta], np.ndarray]


def read_layout(root: Path, fmt: str, class_names: list[str],
                parsers: dict[int, LineParser]) -> Dataset:
    """Read every image under ROOT/images with its label file; ``parsers`` maps the number
    of coordinate values on a line to the function that turns them into a polygon."""
    sidecar = load_sidecar(root)
    images = []
    for path, image_id, label_path in image_label_pairs(root, "labels"):
        meta = make_meta(image_id, path, sidecar)
        objects = []
        if label_path.exists():
            objects = _read_labels(label_path, meta, class_names, parsers)
        images.append(AnnotatedImage(meta, objects, path=path))
    return Dataset(images, list(class_names), root, fmt)


def _read_labels(path: Path, meta: ImageMeta, class_names: list[str],
                 parsers: dict[int, LineParser]) -> list[ObjectAnnotation]:
    objects = []
    for line_no, raw in enumerate(path.read_text().splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        n_values = len(fields) - 1
        if n_values not in parsers:
            allowed = " or ".join(str(k + 1) for k in sorted(parsers))
            raise AnnotationFormatError(path, line_no,
                                        f"expected {allowed} fields, got {len(fields)}")
        cls = parse_int(fields[0], path, line_no, "class index")
        if not 0 <= cls < len(class_names):
            raise AnnotationFormatError(path, line_no, f"class index {cls} outside 0.."
                                                       f"{len(class_names) - 1}")
        values = [parse_float(v, path, line_no, f"value {i + 1}")
                  for i, v in enumerate(fields[1:])]
        polygon = parsers[n_values](path, line_no, values, meta)
        check_in_image(path, line_no, meta, polygon[:, 0], polygon[:, 1])
        try:
            objects.append(ObjectAnnotation(class_names[cls], polygon))
        except ValueError as exc:
            raise AnnotationFormatError(path, line_no, str(exc)) from None
    return objects


def parse_box(path: Path, line: int, v: list[float], meta: ImageMeta) -> np.ndarray:
    """``cx cy w h`` (normalised) -> 4-corner polygon in pixels."""
    cx, cy, w, h = v
    if w <= 0 or h <= 0:
        raise AnnotationFormatError(path, line, f"box width and height must be > 0, got "
                                                f"{w:g} x {h:g}")
    x0, x1 = (cx - w / 2) * meta.width, (cx + w / 2) * meta.width
    y0, y1 = (cy - h / 2) * meta.height, (cy + h / 2) * meta.height
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], dtype=np.float64)


def write_layout(dataset: Dataset, root: Path, image_ext: str, jpeg_quality: int,
                 format_line: Callable[[ObjectAnnotation, ImageMeta], str]) -> None:
    """Write images and label files; ``format_line`` gives the coordinate part of a line."""
    index = {name: i for i, name in enumerate(dataset.class_names)}
    for img in dataset.images:
        name = output_name(img.image_id, image_ext)
        write_rgb(root / "images" / name, img.load_pixels(), jpeg_quality)
        lines = []
        for obj in img.objects:
            if obj.class_name not in index:
                raise ValueError(f"class {obj.class_name!r} of {img.image_id} is not among "
                                 f"the dataset's class names {dataset.class_names}")
            lines.append(f"{index[obj.class_name]} {format_line(obj, img.meta)}")
        label_path = (root / "labels" / name).with_suffix(".txt")
        label_path.parent.mkdir(parents=True, exist_ok=True)
        label_path.write_text("".join(line + "\n" for line in lines))
    write_sidecar(root, dataset.images, image_ext)


def find_yaml(root: Path, fmt: str, preferred: str) -> Path:
    """The dataset YAML in ROOT (``preferred`` when there are several)."""
    found = sorted(root.glob("*.yaml")) + sorted(root.glob("*.yml"))
    if not found:
        raise FileNotFoundError(f"{fmt}: no dataset YAML (with 'names') in {root}")
    if len(found) > 1 and (root / preferred).exists():
        return root / preferred
    return found[0]


def yaml_class_names(yaml_path: Path) -> list[str]:
    """Class names from an Ultralytics dataset YAML: ``names`` as a list or as a mapping
    index -> name (indices 0..N-1)."""
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
    for i, name in enumerate(class_names):
        if not name.strip():
            raise AnnotationFormatError(yaml_path, None, f"class {i} has an empty name")
    return class_names


def norm(value: float, size: int) -> str:
    return f"{value / size:.6f}"


__all__ = ["find_yaml", "norm", "parse_box", "read_layout", "write_layout", "yaml_class_names"]
