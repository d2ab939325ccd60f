"""The small real sample scenes the repository ships (``samples/``): one per class.

The datasets stay in ``../shared``; only these few scenes, from sources whose licences allow
redistribution, enter the repository, each with its labels, attribution and licence beside
it, so a fresh clone's demo counts real imagery with the truth shown. They come from the
sources' **test** splits (never trained or tuned on). ``make_samples`` rebuilds them from
the real-dev folder (``targetfuse data samples``); ``load_samples`` reads what is shipped.

Each sample: ``<name>.jpg`` (or the source's own PNG) and an entry in ``samples.json``:
class, truth count, object centres (px), GSD (null when the source states none), source
file and crop, licence and attribution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lab.data.classes import load_class_map
from lab.data.label_cleaning import DEFAULT_IOU, merge_duplicates
from lab.data.realdev import load_real
from shared.paths import PROJECT_ROOT

SAMPLES_DIR = PROJECT_ROOT / "samples"


@dataclass(frozen=True)
class SampleSpec:
    name: str
    source: str
    image_id: str
    cls: str
    licence: str
    attribution: str
    crop: int | None = None  # square window (px) placed where the class is densest


SPECS = (
    SampleSpec("aircraft-pleiades", "airbus_aircraft", "14436c8c-93ec-41af-9fbf-43a5f39f2b98.jpg",
               "aircraft", "CC BY-NC-SA 4.0 (non-commercial, share alike)",
               "Airbus Aircraft Detection sample, Pleiades imagery (c) Airbus DS, via "
               "github.com/miko7879/pytorch-remote-sensing; cropped", crop=1280),
    SampleSpec("ships-google-earth", "ships_google_earth",
               "GE_69_jpg.rf.8f691b1e93ba519973f72eeccaf6ccfc.jpg", "ship", "CC BY 4.0",
               "Ships in Google Earth (Roboflow export robin-public/"
               "kaggle-ships-in-google-earth-dfqwt v3, via github.com/Donkeys-United/"
               "CV-S-emulation); imagery Google Earth"),
    SampleSpec("vehicles-kit-munich", "kit_cars", "MOS74.png", "vehicle", "CC BY 3.0",
               "KIT AIS Data Set (c) KIT IPF, via github.com/jekhor/aerial-cars-dataset"),
)


def _densest_window(centres: np.ndarray, width: int, height: int, size: int
                    ) -> tuple[int, int]:
    """Top-left corner of the size x size window (on a 64 px lattice) holding most centres."""
    best, corner = -1, (0, 0)
    for y in range(0, max(height - size, 0) + 1, 64):
        for x in range(0, max(width - size, 0) + 1, 64):
            inside = ((centres[:, 0] >= x) & (centres[:, 0] < x + size) &
                      (centres[:, 1] >= y) & (centres[:, 1] < y + size)).sum()
            if inside > best:
                best, corner = int(inside), (x, y)
    return corner


def make_samples(out_dir: str | Path = SAMPLES_DIR, root: str | Path | None = None) -> list[dict]:
    """Cut the sample scenes from the real-dev folder into ``out_dir``; returns the entries."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    class_map = load_class_map()
    entries = []
    for spec in SPECS:
        image = next(i for i in load_real(spec.source, root).images
                     if i.image_id == spec.image_id)
        objects = [o for o in image.objects if class_map.canonical(o.class_name) == spec.cls]
        objects, _ = merge_duplicates(objects, DEFAULT_IOU)
        pixels = image.load_pixels()
        centres = np.array([o.centre for o in objects], float).reshape(-1, 2)
        x0 = y0 = 0
        if spec.crop:
            x0, y0 = _densest_window(centres, pixels.shape[1], pixels.shape[0], spec.crop)
            pixels = pixels[y0:y0 + spec.crop, x0:x0 + spec.crop]
            h, w = pixels.shape[:2]
            inside = ((centres[:, 0] >= x0) & (centres[:, 0] < x0 + w) &
                      (centres[:, 1] >= y0) & (centres[:, 1] < y0 + h))
            centres = centres[inside] - (x0, y0)
        file = f"{spec.name}.jpg"
        cv2.imwrite(str(out_dir / file), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
        entries.append({"name": spec.name, "file": file, "class": spec.cls,
                        "truth": int(len(centres)),
                        "centres": [[round(float(x), 1), round(float(y), 1)] for x, y in centres],
                        "gsd_m": image.meta.gsd_m, "width": int(pixels.shape[1]),
                        "height": int(pixels.shape[0]), "source": spec.source,
                        "source_image": spec.image_id, "split": "test",
                        "crop": [x0, y0, int(pixels.shape[1]), int(pixels.shape[0])]
                        if spec.crop else None,
                        "licence": spec.licence, "attribution": spec.attribution})
    (out_dir / "samples.json").write_text(json.dumps({"samples": entries}, indent=1) + "\n")
    return entries


@dataclass
class Sample:
    name: str
    cls: str
    truth: int
    gsd_m: float | None
    path: Path
    licence: str
    attribution: str

    def load_pixels(self) -> np.ndarray:
        from shared.imageio import read_rgb

        return read_rgb(self.path)


def load_samples(folder: str | Path = SAMPLES_DIR) -> list[Sample]:
    folder = Path(folder)
    raw = json.loads((folder / "samples.json").read_text())
    return [Sample(e["name"], e["class"], int(e["truth"]), e["gsd_m"], folder / e["file"],
                   e["licence"], e["attribution"]) for e in raw["samples"]]
