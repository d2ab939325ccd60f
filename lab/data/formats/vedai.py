"""VEDAI annotation text (``vedai``): Vehicle Detection in Aerial Imagery.

Layout: ``ROOT/images/NAME.ext`` and ``ROOT/annotations/NAME.txt`` (a missing file means an
image with no objects). Each line is one object::

    cx cy angle CLASS IS_CONTAINED IS_OCCLUDED x1 x2 x3 x4 y1 y2 y3 y4

in pixels: the centre, the orientation in radians, the class code, two 0/1 flags (the object
lies wholly inside the image; it is partly hidden), then the four corners' x values followed
by their y values. The polygon is the four corners; the centre and angle are checked as
numbers but not used (the corners say the same). ``IS_CONTAINED`` 0 is read as
``truncated``, ``IS_OCCLUDED`` 1 as ``difficult``.

Class codes are VEDAI's (``CLASS_CODES``); names with spaces ("camping car") are kept as they
are. The writer accepts only those names: VEDAI has no file of class names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lab.data.formats.base import (
    AnnotationFormatError,
    check_in_image,
    fmt_num,
    four_corners,
    image_label_pairs,
    load_sidecar,
    make_meta,
    output_name,
    parse_float,
    parse_int,
    write_sidecar,
)
from shared.annotations import AnnotatedImage, Dataset, ObjectAnnotation
from shared.imageio import write_rgb

LABEL_DIR = "annotations"
CLASS_CODES = {1: "car", 2: "truck", 4: "tractor", 5: "camping car", 7: "motorcycle", 8: "bus",
               9: "van", 10: "other", 11: "pickup", 23: "boat", 31: "plane"}
_CODE_OF = {name: code for code, name in CLASS_CODES.items()}
_FIELDS = 14


def read(root: Path) -> Dataset:
    sidecar = load_sidecar(root)
    images = []
    for path, image_id, label_path in image_label_pairs(root, LABEL_DIR, "vedai"):
        meta = make_meta(image_id, path, sidecar)
        objects = _read_labels(label_path, meta) if label_path.exists() else []
        images.append(AnnotatedImage(meta, objects, path=path))
    names = sorted({o.class_name for img in images for o in img.objects})
    return Dataset(images, names, root, "vedai")


def _read_labels(path: Path, meta) -> list[ObjectAnnotation]:
    objects = []
    for line_no, raw in enumerate(path.read_text().splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        if len(fields) != _FIELDS:
            raise AnnotationFormatError(
                path, line_no, "expected 'cx cy angle class is_contained is_occluded "
                               f"x1 x2 x3 x4 y1 y2 y3 y4' ({_FIELDS} fields), got {len(fields)}")
        for i, what in enumerate(("cx", "cy", "angle")):
            parse_float(fields[i], path, line_no, what)
        code = parse_int(fields[3], path, line_no, "class code")
        if code not in CLASS_CODES:
            raise AnnotationFormatError(path, line_no, f"unknown VEDAI class code {code}; known: "
                                                       f"{', '.join(map(str, CLASS_CODES))}")
        flags = []
        for i, what in ((4, "is_contained"), (5, "is_occluded")):
            if fields[i] not in ("0", "1"):
                raise AnnotationFormatError(path, line_no,
                                            f"{what} must be 0 or 1, got {fields[i]!r}")
            flags.append(fields[i] == "1")
        xs = [parse_float(v, path, line_no, f"x{i + 1}") for i, v in enumerate(fields[6:10])]
        ys = [parse_float(v, path, line_no, f"y{i + 1}") for i, v in enumerate(fields[10:14])]
        check_in_image(path, line_no, meta, xs, ys)
        polygon = np.column_stack([xs, ys]).astype(np.float64)
        if _area(polygon) <= 0:
            raise AnnotationFormatError(path, line_no, "the four corners enclose no area")
        try:
            objects.append(ObjectAnnotation(CLASS_CODES[code], polygon,
                                            difficult=flags[1], truncated=not flags[0]))
        except ValueError as exc:
            raise AnnotationFormatError(path, line_no, str(exc)) from None
    return objects


def _area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def write(dataset: Dataset, root: Path, image_ext: str = ".png", jpeg_quality: int = 95) -> None:
    unknown = sorted({o.class_name for img in dataset.images for o in img.objects} - set(_CODE_OF))
    if unknown:
        raise ValueError(f"vedai: no class code for {unknown}; VEDAI knows "
                         f"{', '.join(CLASS_CODES.values())}")
    for img in dataset.images:
        name = output_name(img.image_id, image_ext)
        write_rgb(root / "images" / name, img.load_pixels(), jpeg_quality)
        lines = []
        for obj in img.objects:
            corners = four_corners(obj.polygon)
            cx, cy = corners.mean(axis=0)
            dx, dy = corners[1] - corners[0]
            angle = float(np.arctan2(dy, dx))
            lines.append(" ".join(
                [fmt_num(cx), fmt_num(cy), f"{angle:.6f}", str(_CODE_OF[obj.class_name]),
                 str(int(not obj.truncated)), str(int(obj.difficult))]
                + [fmt_num(v) for v in corners[:, 0]] + [fmt_num(v) for v in corners[:, 1]]))
        label_path = (root / LABEL_DIR / name).with_suffix(".txt")
        label_path.parent.mkdir(parents=True, exist_ok=True)
        label_path.write_text("".join(line + "\n" for line in lines))
    write_sidecar(root, dataset.images, image_ext)
