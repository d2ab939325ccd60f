"""Airbus Aircraft Detection CSV (``airbus-csv``).

Layout: ``ROOT/annotations.csv`` and ``ROOT/images/``. The CSV has the header
``id,image_id,geometry,class``; ``geometry`` is a closed ring of pixel corners written as
``"[(x0, y0), (x1, y1), ..., (x0, y0)]"``; ``class`` is ``Airplane`` or
``Truncated_airplane`` (an aircraft cut by the image border). Images with no row are
images with no objects.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from lab.data.formats.base import (
    AnnotationFormatError,
    check_in_image,
    find_images,
    fmt_num,
    load_sidecar,
    make_meta,
    output_name,
    write_sidecar,
)
from shared.annotations import AnnotatedImage, Dataset, ObjectAnnotation
from shared.imageio import write_rgb

HEADER = ["id", "image_id", "geometry", "class"]
_POINT = re.compile(r"\(\s*([^,()\s]+)\s*,\s*([^,()\s]+)\s*\)")
_GEOMETRY = re.compile(r"^\[\s*\(.*\)\s*\]$", re.S)


def read(root: Path) -> Dataset:
    csv_path = root / "annotations.csv"
    if not csv_path.exists():
        raise FileNotFoundError(f"airbus-csv: no annotations.csv in {root}")
    sidecar = load_sidecar(root)
    image_dir = root / "images"
    paths = {p.relative_to(image_dir).as_posix(): p for p in find_images(image_dir)}
    metas = {}
    objects: dict[str, list[ObjectAnnotation]] = {k: [] for k in paths}
    with open(csv_path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != HEADER:
            raise AnnotationFormatError(csv_path, 1, f"expected header {','.join(HEADER)}, "
                                                     f"got {header!r}")
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != 4:
                raise AnnotationFormatError(csv_path, line, f"expected 4 fields, got {len(row)}")
            image_id, geometry, class_name = row[1].strip(), row[2].strip(), row[3].strip()
            if image_id not in paths:
                raise AnnotationFormatError(csv_path, line,
                                            f"image {image_id!r} not found in {image_dir}")
            polygon = _parse_geometry(geometry, csv_path, line)
            if image_id not in metas:
                metas[image_id] = make_meta(image_id, paths[image_id], sidecar)
            check_in_image(csv_path, line, metas[image_id], polygon[:, 0], polygon[:, 1])
            try:
                obj = ObjectAnnotation(class_name, polygon,
                                       truncated=class_name.lower().startswith("truncated"))
            except ValueError as exc:
                raise AnnotationFormatError(csv_path, line, str(exc)) from None
            objects[image_id].append(obj)
    images = []
    for image_id, path in paths.items():
        meta = metas.get(image_id) or make_meta(image_id, path, sidecar)
        images.append(AnnotatedImage(meta, objects[image_id], path=path))
    names = sorted({o.class_name for img in images for o in img.objects})
    return Dataset(images, names, root, "airbus-csv")


def _parse_geometry(text: str, path: Path, line: int) -> np.ndarray:
    if not _GEOMETRY.match(text):
        raise AnnotationFormatError(path, line, f"geometry is not a list of (x, y) points: "
                                                f"{text[:60]!r}")
    points = _POINT.findall(text)
    if text.count("(") != len(points):
        raise AnnotationFormatError(path, line, f"malformed point in geometry {text[:60]!r}")
    try:
        coords = np.array([(float(x), float(y)) for x, y in points], dtype=np.float64)
    except ValueError:
        raise AnnotationFormatError(path, line, f"non-numeric coordinate in {text[:60]!r}") \
            from None
    if len(coords) < 3 or not np.all(np.isfinite(coords)):
        raise AnnotationFormatError(path, line, "geometry needs at least 3 finite points")
    return coords


def write(dataset: Dataset, root: Path, image_ext: str = ".jpg", jpeg_quality: int = 95) -> None:
    image_dir = root / "images"
    rows = []
    for img in dataset.images:
        name = output_name(img.image_id, image_ext)
        write_rgb(image_dir / name, img.load_pixels(), jpeg_quality)
        for obj in img.objects:
            ring = list(obj.polygon) + [obj.polygon[0]]
            geometry = "[" + ", ".join(f"({fmt_num(x)}, {fmt_num(y)})" for x, y in ring) + "]"
            rows.append([len(rows) + 1, name, geometry, obj.class_name])
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "annotations.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)
    write_sidecar(root, dataset.images, image_ext)
