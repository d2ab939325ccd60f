"""DOTA ``labelTxt`` (``dota``).

Layout: ``ROOT/images/NAME.ext`` and ``ROOT/labelTxt/NAME.txt``. A label file may open with
header lines ``imagesource:SOURCE`` and ``gsd:METRES`` (``gsd:null`` when unknown); each
object line is ``x1 y1 x2 y2 x3 y3 x4 y4 CLASS DIFFICULT`` in pixels, the four corners
clockwise, ``DIFFICULT`` 0 or 1 (DOTA-v1.0 files without it are read as 0). Class names
hold no spaces: the writer joins words with hyphens, as DOTA does.
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
    write_sidecar,
)
from shared.annotations import AnnotatedImage, Dataset, ObjectAnnotation
from shared.imageio import write_rgb

LABEL_DIR = "labelTxt"


def read(root: Path) -> Dataset:
    sidecar = load_sidecar(root)
    images = []
    for path, image_id, label_path in image_label_pairs(root, LABEL_DIR, "dota"):
        header: dict[str, object] = {}
        rows: list[tuple[int, list[str]]] = []
        if label_path.exists():
            header, rows = _split_header(label_path)
        meta = make_meta(image_id, path, sidecar, **header)
        objects = []
        for line_no, fields in rows:
            coords = [parse_float(v, label_path, line_no, f"coordinate {i + 1}")
                      for i, v in enumerate(fields[:8])]
            polygon = np.array(coords, dtype=np.float64).reshape(4, 2)
            check_in_image(label_path, line_no, meta, polygon[:, 0], polygon[:, 1])
            difficult = fields[9] if len(fields) == 10 else "0"
            if difficult not in ("0", "1"):
                raise AnnotationFormatError(label_path, line_no,
                                            f"difficult flag must be 0 or 1, got {difficult!r}")
            try:
                objects.append(ObjectAnnotation(fields[8], polygon, difficult=difficult == "1"))
            except ValueError as exc:
                raise AnnotationFormatError(label_path, line_no, str(exc)) from None
        images.append(AnnotatedImage(meta, objects, path=path))
    names = sorted({o.class_name for img in images for o in img.objects})
    return Dataset(images, names, root, "dota")


def _split_header(path: Path) -> tuple[dict[str, object], list[tuple[int, list[str]]]]:
    header: dict[str, object] = {}
    rows = []
    for line_no, raw in enumerate(path.read_text().splitlines(), start=1):
        text = raw.strip()
        if not text:
            continue
        key, sep, value = text.partition(":")
        if sep and key in ("imagesource", "gsd") and not rows:
            value = value.strip()
            if key == "imagesource":
                header["source"] = value or None
            elif value.lower() not in ("", "null", "none", "nan"):
                gsd = parse_float(value, path, line_no, "gsd")
                if gsd <= 0:
                    raise AnnotationFormatError(path, line_no, f"gsd must be > 0, got {value}")
                header["gsd_m"] = gsd
            continue
        fields = text.split()
        if len(fields) not in (9, 10):
            raise AnnotationFormatError(path, line_no, "expected 'x1 y1 ... x4 y4 class "
                                                       f"difficult' (10 fields), got {len(fields)}")
        rows.append((line_no, fields))
    return header, rows


def write(dataset: Dataset, root: Path, image_ext: str = ".png", jpeg_quality: int = 95) -> None:
    for img in dataset.images:
        name = output_name(img.image_id, image_ext)
        write_rgb(root / "images" / name, img.load_pixels(), jpeg_quality)
        gsd = "null" if img.meta.gsd_m is None else f"{img.meta.gsd_m:g}"
        lines = [f"imagesource:{img.meta.source or 'targetfuse'}", f"gsd:{gsd}"]
        for obj in img.objects:
            coords = " ".join(fmt_num(v) for v in four_corners(obj.polygon).ravel())
            # DOTA writes multi-word classes with hyphens ("large-vehicle").
            class_name = "-".join(obj.class_name.split())
            lines.append(f"{coords} {class_name} {int(obj.difficult)}")
        label_path = (root / LABEL_DIR / name).with_suffix(".txt")
        label_path.parent.mkdir(parents=True, exist_ok=True)
        label_path.write_text("\n".join(lines) + "\n")
    write_sidecar(root, dataset.images, image_ext)
