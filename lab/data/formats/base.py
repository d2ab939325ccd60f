"""What every annotation format shares: errors, the metadata sidecar, image discovery.

Most formats carry no ground sample distance, footprint or capture time. A dataset folder
may hold a sidecar ``images_meta.json`` that supplies them::

    {"dataset": {"gsd_m": 0.5},
     "images": {"a.jpg": {"gsd_m": 0.5, "footprint": {...}, "sequence": "s1", ...}}}

Readers merge it into each image's :class:`~shared.annotations.ImageMeta`; writers emit it
so that nothing the object model holds is lost on a round trip through a format.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from shared.annotations import AnnotatedImage, Footprint, ImageMeta
from shared.imageio import IMAGE_SUFFIXES, image_size

SIDECAR = "images_meta.json"


class AnnotationFormatError(ValueError):
    """A broken annotation file: names the file, the line (when there is one) and the fault."""

    def __init__(self, path: str | Path, line: int | None, message: str):
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


def parse_float(token: str, path: Path, line: int, what: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise AnnotationFormatError(path, line, f"{what} is not a number: {token!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise AnnotationFormatError(path, line, f"{what} is not finite: {token!r}")
    return value


def parse_int(token: str, path: Path, line: int, what: str) -> int:
    try:
        return int(token)
    except ValueError:
        raise AnnotationFormatError(path, line, f"{what} is not an integer: {token!r}") from None


def find_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively), in a stable order."""
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def image_label_pairs(root: Path, label_dir: str, fmt: str | None = None
                      ) -> list[tuple[Path, str, Path]]:
    """(image file, image id, its label file) for every image under ``ROOT/images``, the
    label file at the same relative path under ``ROOT/label_dir`` with a ``.txt`` suffix (it
    need not exist: an image without objects). With ``fmt``, a missing label folder is an
    error naming the format."""
    image_dir, labels = root / "images", root / label_dir
    if fmt is not None and not labels.is_dir():
        raise FileNotFoundError(f"{fmt}: no {label_dir}/ folder in {root}")
    pairs = []
    for path in find_images(image_dir):
        rel = path.relative_to(image_dir)
        pairs.append((path, rel.as_posix(), (labels / rel).with_suffix(".txt")))
    return pairs


def load_sidecar(root: Path) -> dict[str, Any]:
    path = root / SIDECAR
    if not path.exists():
        return {"dataset": {}, "images": {}}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise AnnotationFormatError(path, exc.lineno, f"invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("images", {}), dict):
        raise AnnotationFormatError(path, None, "expected an object with an 'images' object")
    data.setdefault("dataset", {})
    data.setdefault("images", {})
    return data


def make_meta(image_id: str, path: Path, sidecar: dict[str, Any],
              width: int | None = None, height: int | None = None,
              **known: Any) -> ImageMeta:
    """ImageMeta for one image: size from the header unless given, then sidecar values,
    then what the format itself says (``known``), later sources winning."""
    if width is None or height is None:
        width, height = image_size(path)
    fields: dict[str, Any] = {}
    fields.update({k: v for k, v in sidecar["dataset"].items() if k in _META_KEYS})
    entry = sidecar["images"].get(image_id, {})
    fields.update({k: v for k, v in entry.items() if k in _META_KEYS})
    fields.update({k: v for k, v in known.items() if v is not None})
    footprint = fields.pop("footprint", None)
    if isinstance(footprint, dict):
        try:
            footprint = Footprint.from_dict(footprint)
        except (KeyError, TypeError, ValueError) as exc:
            raise AnnotationFormatError(path.parent, None,
                                        f"bad footprint for {image_id}: {exc}") from None
    try:
        return ImageMeta(image_id=image_id, width=int(width), height=int(height),
                         footprint=footprint, **fields)
    except (TypeError, ValueError) as exc:
        raise AnnotationFormatError(path, None, f"bad metadata for {image_id}: {exc}") from None


_META_KEYS = ("gsd_m", "capture_time", "source", "sequence", "extra", "footprint")


def output_name(image_id: str, ext: str) -> str:
    """File name (relative to the images folder) a writer gives an image."""
    path = Path(image_id)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        path = path.with_suffix("")
    return path.as_posix() + ext


def fmt_num(value: float) -> str:
    """A coordinate as text: at most two decimals, no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def four_corners(polygon: np.ndarray) -> np.ndarray:
    """The polygon itself when it has 4 corners, else its smallest rotated rectangle:
    what a 4-corner format (DOTA, YOLO-OBB) can hold."""
    if len(polygon) == 4:
        return np.asarray(polygon, dtype=np.float64)
    rect = cv2.minAreaRect(np.asarray(polygon, dtype=np.float32))
    return cv2.boxPoints(rect).astype(np.float64)


def write_sidecar(root: Path, images: Iterable[AnnotatedImage], ext: str) -> Path:
    """Write the metadata of ``images`` keyed by the names :func:`output_name` gives them."""
    entries = {}
    for img in images:
        d = img.meta.to_dict()
        entries[output_name(img.image_id, ext)] = {
            k: v for k, v in d.items() if k not in ("image_id", "width", "height")}
    root.mkdir(parents=True, exist_ok=True)
    path = root / SIDECAR
    path.write_text(json.dumps({"dataset": {}, "images": entries}, indent=1, sort_keys=True))
    return path


def check_in_image(path: Path, line: int, meta: ImageMeta, xs: Iterable[float],
                   ys: Iterable[float], slack: float = 0.1) -> None:
    """Reject coordinates far outside the image: a sign of swapped or mis-scaled fields.

    Annotations of objects cut by the border legitimately poke a little past it, so only
    points more than ``slack`` of the image size outside are errors.
    """
    w, h = meta.width, meta.height
    for x, y in zip(xs, ys, strict=True):
        if not (-slack * w <= x <= (1 + slack) * w and -slack * h <= y <= (1 + slack) * h):
            raise AnnotationFormatError(
                path, line, f"point ({x:g}, {y:g}) lies far outside the {w}x{h} image")
