"""Annotation formats: one reader and one writer per format, behind one registry.

``read_dataset(root, fmt)`` gives a :class:`~shared.annotations.Dataset` whatever the format;
``write_dataset(dataset, root, fmt)`` writes images and annotations in that format's layout
(plus the ``images_meta.json`` sidecar for what the format cannot carry).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lab.data.formats import airbus_csv, dota, vedai, voc, yolo, yolo_obb
from lab.data.formats.base import AnnotationFormatError
from shared.annotations import Dataset


@dataclass(frozen=True)
class Format:
    name: str
    read: Callable[[Path], Dataset]
    write: Callable[..., None]
    default_image_ext: str
    description: str


FORMATS: dict[str, Format] = {
    "airbus-csv": Format("airbus-csv", airbus_csv.read, airbus_csv.write, ".jpg",
                         "annotations.csv polygons + images/ (Airbus Aircraft Detection)"),
    "yolo-obb": Format("yolo-obb", yolo_obb.read, yolo_obb.write, ".jpg",
                       "normalised 4-corner boxes, names in the dataset YAML (Ultralytics OBB)"),
    "yolo": Format("yolo", yolo.read, yolo.write, ".png",
                   "normalised cx cy w h boxes, names in classes.names (or a data YAML)"),
    "dota": Format("dota", dota.read, dota.write, ".png",
                   "labelTxt/ pixel quadrilaterals with imagesource/gsd headers (DOTA)"),
    "voc": Format("voc", voc.read, voc.write, ".jpg", "Annotations/*.xml boxes (Pascal VOC)"),
    "vedai": Format("vedai", vedai.read, vedai.write, ".png",
                    "annotations/ pixel corners with VEDAI class codes (VEDAI)"),
}


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}") \
            from None


def read_dataset(root: str | Path, fmt: str, gsd_m: float | None = None) -> Dataset:
    """Read a dataset folder; ``gsd_m`` fills in the GSD of images that do not state one."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    if gsd_m is not None and not gsd_m > 0:
        raise ValueError(f"gsd must be a positive number of metres, got {gsd_m}")
    dataset = get_format(fmt).read(root)
    for image in dataset.images:
        if image.meta.gsd_m is None:
            image.meta.gsd_m = gsd_m
    return dataset


def write_dataset(dataset: Dataset, root: str | Path, fmt: str, image_ext: str | None = None,
                  jpeg_quality: int = 95) -> Path:
    spec = get_format(fmt)
    root = Path(root)
    spec.write(dataset, root, image_ext=image_ext or spec.default_image_ext,
               jpeg_quality=jpeg_quality)
    return root


__all__ = ["FORMATS", "AnnotationFormatError", "Format", "get_format", "read_dataset",
           "write_dataset"]
