"""Training samples for the counters: scenes at the counter's GSD, augmented random crops.

Each scene is resampled once to the counter's GSD and its density and mask targets are built
there (``lab.training.density``), one channel per class, with a record of which classes the
scene's labels cover (the loss ignores the others). A scene whose GSD is unknown stays at
its own resolution, as the services treat such a scene, and is always sampled with the wide
scale range, so the counter learns objects over the spread of sizes an unknown GSD gives;
scenes of known GSD get the wide range on a fraction ``wide_p`` of their crops.

A sample is a ``crop`` x ``crop`` window through one affine warp of the scene: rotation by
any angle in [0, 360), scale jitter, optional flip, and a random position (half the time
centred near an object so crowded aprons are not rare). The density is warped the same way
and multiplied by 1/scale^2 so it keeps its mass; pixels outside the scene are black with
zero density, as at inference. Radiometric jitter (per-channel gain, offset, gamma), sensor
noise and blur follow, then, on a share ``jpeg_p`` of the crops, a JPEG round trip at a
quality drawn from ``jpeg_quality``: every tile the ground counts in service came down as a
JPEG, and a ground counter trained on clean pixels lost a third of the small vehicles at
q90 that it found on the same tiles uncompressed (VEDAI training tiles: 0.58x -> 0.37x).
Targets leave at the network's output stride: density sum-pooled (count kept), mask
average-pooled (a soft target for the Jaccard loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from lab.data.label_cleaning import DEFAULT_IOU, merge_duplicates
from lab.training.density import density_map, object_mask, sum_pool
from shared.annotations import AnnotatedImage
from shared.pipeline.codec import decode_tile, encode_tile
from shared.preprocess import normalise


@dataclass
class Scene:
    image_id: str
    pixels: np.ndarray  # uint8 RGB at the counter's GSD
    density: list[np.ndarray | None]  # float32 per class; None where it has no object
    mask: list[np.ndarray | None]  # uint8 per class
    centres: np.ndarray  # (N, 2) object centres, px
    counts: np.ndarray  # (C,) objects per class
    labelled: np.ndarray  # (C,) bool: the labels cover this class exhaustively
    gsd_known: bool = True
    source: str = ""
    enlarge: float = 1.0  # the counter's pixels per pixel kept here (load_scene's detail_gsd)

    @property
    def count(self) -> int:
        return int(self.counts[self.labelled].sum())

    def density_of(self, c: int) -> np.ndarray:
        d = self.density[c]
        return d if d is not None else np.zeros(self.pixels.shape[:2], np.float32)

    def mask_of(self, c: int) -> np.ndarray:
        m = self.mask[c]
        return m if m is not None else np.zeros(self.pixels.shape[:2], np.uint8)


def load_scene(image: AnnotatedImage, model_gsd: float,
               classes: set[str] | list[set[str]] | None, sigma_factor: float = 0.2,
               dedupe_iou: float = DEFAULT_IOU, labelled: list[bool] | None = None,
               source: str = "", detail_gsd: float | None = None) -> Scene:
    """``classes``: per output class the annotation names that count as it (one set: a
    single-class counter; None: every object, one class). ``detail_gsd``: the pixels'
    detail is limited to this GSD (a scene without a GSD is taken to be at it) and the
    scene kept there, enlarged to ``model_gsd`` in each crop (``Scene.enlarge``): a ground
    counter that counts downlinked tiles (at the onboard
    counter's GSD) enlarged, for small objects to span more of its feature maps."""
    groups = [classes] if classes is None or isinstance(classes, set) else list(classes)
    pixels = image.load_pixels()
    native = image.meta.gsd_m or detail_gsd or model_gsd
    # Kept at the coarser of the two GSDs: enlarging happens in each crop's warp, so an
    # enlarged scene costs no more memory than one at the detail GSD.
    kept = max(model_gsd, detail_gsd or model_gsd)
    scale = native / kept  # from the image's own pixels to the kept ones
    if scale != 1.0:
        pixels = cv2.resize(pixels, None, fx=scale, fy=scale,
                            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    h, w = pixels.shape[:2]
    densities, masks, centres, counts = [], [], [], []
    for names in groups:
        objs = [o for o in image.objects if names is None or o.class_name in names]
        objs, _ = merge_duplicates(objs, dedupe_iou)
        densities.append(density_map(objs, w, h, scale, sigma_factor) if objs else None)
        masks.append(object_mask(objs, w, h, scale) if objs else None)
        centres += [[c * scale for c in o.centre] for o in objs]
        counts.append(len(objs))
    flags = np.ones(len(groups), bool) if labelled is None else np.asarray(labelled, bool)
    return Scene(image.image_id, pixels, densities, masks,
                 np.array(centres, np.float32).reshape(-1, 2), np.array(counts), flags,
                 image.meta.gsd_m is not None, source, kept / model_gsd)


@dataclass
class Augment:
    crop: int = 256
    scale: tuple[float, float] = (0.8, 1.25)
    wide_scale: tuple[float, float] = (0.5, 2.0)
    wide_p: float = 0.0  # share of crops of known-GSD scenes drawn at the wide range
    rotate: bool = True
    flip: bool = True
    object_bias: float = 0.5
    radiometry: bool = True
    jpeg_p: float = 0.0  # share of crops JPEG round-tripped (as a downlinked tile is)
    jpeg_quality: tuple[int, int] = (40, 95)  # its quality, uniform in this range


def sample(scene: Scene, rng: np.random.Generator, aug: Augment, stride: int,
           scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One augmented crop: (3, S, S) input, (C, S/stride, S/stride) density and mask;
    ``scale``: the crop enlarged that much more (a class counted at its own input scale)."""
    h, w = scene.pixels.shape[:2]
    s = aug.crop
    enlarge = scene.enlarge * scale
    q = s / 4 / enlarge  # a quarter of the crop, in the scene's pixels
    if len(scene.centres) and rng.random() < aug.object_bias:
        cx, cy = scene.centres[rng.integers(len(scene.centres))] + rng.normal(0, q, 2)
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    cx, cy = float(np.clip(cx, q, w - q)), float(np.clip(cy, q, h - q))
    wide = not scene.gsd_known or (aug.wide_p > 0 and rng.random() < aug.wide_p)
    lo, hi = aug.wide_scale if wide else aug.scale
    zoom = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) * enlarge
    angle = float(rng.uniform(0, 360)) if aug.rotate else 0.0
    m = cv2.getRotationMatrix2D((cx, cy), angle, zoom)
    m[:, 2] += (s / 2 - cx, s / 2 - cy)
    if aug.flip and rng.random() < 0.5:
        m = np.array([[-1, 0, s], [0, 1, 0]], np.float64) @ np.vstack([m, [0, 0, 1]])
    img = cv2.warpAffine(scene.pixels, m, (s, s), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT)
    out = -(-s // stride)
    dens_t = np.zeros((len(scene.density), out, out), np.float32)
    mask_t = np.zeros_like(dens_t)
    for c, (dens, mask) in enumerate(zip(scene.density, scene.mask, strict=True)):
        if dens is None:
            continue
        dens = cv2.warpAffine(dens, m, (s, s), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT) / (zoom * zoom)
        mask = cv2.warpAffine(mask, m, (s, s), flags=cv2.INTER_NEAREST,
                              borderMode=cv2.BORDER_CONSTANT)
        dens_t[c] = sum_pool(dens.astype(np.float32), stride)
        mask_t[c] = sum_pool(mask.astype(np.float32), stride) / (stride * stride)
    if aug.radiometry:
        img = _radiometry(img, rng)
    if aug.jpeg_p > 0 and rng.random() < aug.jpeg_p:
        lo, hi = aug.jpeg_quality
        img = decode_tile(encode_tile(img, int(rng.integers(lo, hi + 1))))
    return normalise(img), dens_t, mask_t


def _radiometry(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = img.astype(np.float32)
    x = x * rng.uniform(0.75, 1.25) * rng.uniform(0.93, 1.07, 3) + rng.uniform(-20, 20)
    x = 255.0 * np.power(np.clip(x, 0, 255) / 255.0, rng.uniform(0.8, 1.25))
    if rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.3, 1.2))
    if rng.random() < 0.5:
        x = x + rng.normal(0, rng.uniform(1, 6), x.shape).astype(np.float32)
    return np.clip(x, 0, 255).astype(np.uint8)


class CropStream(torch.utils.data.IterableDataset):
    """An endless, seeded stream of augmented crops drawn from scenes (weighted by area).

    ``channel_scale`` (C,): the input scale each class is counted at (``ground.class_scales``).
    Each crop is then drawn at one of the scales of the classes its scene labels, at random,
    and only the classes of that scale count as labelled in it: a class learns at its own
    scale only, and the others are free there."""

    def __init__(self, scenes: list[Scene], aug: Augment, stride: int, seed: int,
                 scene_weights: list[float] | None = None,
                 channel_scale: np.ndarray | None = None):
        self.scenes, self.aug, self.stride, self.seed = scenes, aug, stride, seed
        self.channel_scale = channel_scale
        area = np.array([sc.pixels.shape[0] * sc.pixels.shape[1] for sc in scenes], float)
        weights = area if scene_weights is None else area * np.asarray(scene_weights, float)
        self.p = weights / weights.sum()

    def __iter__(self):
        rng = np.random.default_rng(self.seed)
        while True:
            scene = self.scenes[rng.choice(len(self.scenes), p=self.p)]
            scale, labelled = 1.0, scene.labelled
            if self.channel_scale is not None:
                scales = np.unique(self.channel_scale[scene.labelled]) if \
                    scene.labelled.any() else np.ones(1)
                scale = float(scales[rng.integers(len(scales))])
                labelled = scene.labelled & (self.channel_scale == scale)
            x, d, m = sample(scene, rng, self.aug, self.stride, scale)
            yield (torch.from_numpy(x), torch.from_numpy(d), torch.from_numpy(m),
                   torch.from_numpy(labelled))
