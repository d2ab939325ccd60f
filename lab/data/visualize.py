"""Drawing annotations and a tile grid with per-tile true counts over an image.

Objects are drawn as their polygons (one colour per class) with a dot at the centre that
decides their tile; the grid lines and each tile's count are drawn on top. Large scenes are
drawn on a downscaled copy (``max_side``) so the picture stays a reasonable file, with line
widths and text sized for the output resolution.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from shared.annotations import AnnotatedImage
from shared.imageio import write_rgb
from shared.tile_grid import TileGrid, true_counts

# Distinct, colour-blind-friendly colours (Okabe-Ito), RGB.
PALETTE = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178),
           (213, 94, 0), (204, 121, 167), (255, 255, 255)]


def draw(image: AnnotatedImage, tile_size: int | None = None, max_side: int = 2048,
         classes: set[str] | None = None, class_names: list[str] | None = None) -> np.ndarray:
    """An RGB picture of ``image`` with its annotations (and tile grid when given)."""
    pixels = image.load_pixels()
    h, w = pixels.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    canvas = cv2.resize(pixels, (round(w * scale), round(h * scale)),
                        interpolation=cv2.INTER_AREA) if scale < 1 else pixels.copy()
    names = class_names or sorted({o.class_name for o in image.objects})
    colour = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}
    thick = max(1, round(min(canvas.shape[:2]) / 500))
    for obj in image.objects:
        if classes is not None and obj.class_name not in classes:
            continue
        pts = np.round(obj.polygon * scale).astype(np.int32)
        c = colour.get(obj.class_name, PALETTE[-1])
        cv2.polylines(canvas, [pts], True, c, thick, cv2.LINE_AA)
        cx, cy = obj.centre
        cv2.circle(canvas, (round(cx * scale), round(cy * scale)), thick + 1, c, -1)
    if tile_size:
        _draw_grid(canvas, image, TileGrid(w, h, tile_size), scale, thick, classes)
    _legend(canvas, image, colour, classes)
    return canvas


def _draw_grid(canvas: np.ndarray, image: AnnotatedImage, grid: TileGrid, scale: float,
               thick: int, classes: set[str] | None) -> None:
    counts = true_counts(grid, image.objects, classes).ravel()
    font = max(0.35, min(canvas.shape[:2]) / 1400) * max(0.5, min(1.5, grid.tile_size * scale
                                                                  / 180))
    for tile in grid:
        x0, y0 = round(tile.x0 * scale), round(tile.y0 * scale)
        x1, y1 = round(tile.x1 * scale) - 1, round(tile.y1 * scale) - 1
        cv2.rectangle(canvas, (x0, y0), (x1, y1), (255, 60, 60), max(1, thick // 2))
        text = str(int(counts[tile.index]))
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
        cv2.rectangle(canvas, (x0 + 2, y0 + 2), (x0 + tw + 8, y0 + th + 10), (0, 0, 0), -1)
        cv2.putText(canvas, text, (x0 + 5, y0 + th + 6), cv2.FONT_HERSHEY_SIMPLEX, font,
                    (255, 255, 255), thick, cv2.LINE_AA)


def _legend(canvas: np.ndarray, image: AnnotatedImage, colour: dict, classes) -> None:
    counts = image.class_counts()
    lines = [(f"{image.image_id}: {image.count(classes)} objects", (255, 255, 255))]
    lines += [(f"{n}: {counts[n]}", c) for n, c in colour.items()
              if n in counts and (classes is None or n in classes)]
    font = max(0.4, min(canvas.shape[:2]) / 1600)
    step = int(30 * font) + 4
    width = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, font, 1)[0][0] for t, _ in lines)
    top = canvas.shape[0] - step * len(lines) - 8
    cv2.rectangle(canvas, (4, top), (width + 16, canvas.shape[0] - 4), (0, 0, 0), -1)
    for i, (text, c) in enumerate(lines):
        cv2.putText(canvas, text, (10, top + step * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, font, c,
                    1, cv2.LINE_AA)


def save(image: AnnotatedImage, out: str | Path, **kwargs) -> Path:
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"the picture is written as PNG; got {out.name!r}")
    return write_rgb(out, draw(image, **kwargs))
