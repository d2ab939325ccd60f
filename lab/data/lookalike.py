"""Grouping images that show the same place, so splits keep them on one side.

Several Airbus scenes are different crops or dates of the same airport; with one in train and
one in validation the validation score measures memory. Two images are the same place when
their ORB features match under one homography: keypoints on a downscaled grey copy, mutual
Lowe-ratio matches, then RANSAC; at least ``min_inliers`` consistent matches links the pair.
Linked images form groups (union-find), which become the images' ``sequence`` for splitting.

Tiles cut side by side from one mosaic (VEDAI's orthophoto tiles) share no pixels, so ORB
cannot link them; with ``adjacent=True`` two images of one size are also linked when the edge
of one continues the opposite edge of the other (``_continues``): across the seam the
pixels differ about as little as between neighbouring rows inside either image, and the two
border lines correlate.
"""

from __future__ import annotations

import cv2
import numpy as np

from shared.annotations import AnnotatedImage


def _features(image: AnnotatedImage, side: int, n_features: int):
    grey = cv2.cvtColor(image.load_pixels(), cv2.COLOR_RGB2GRAY)
    scale = side / max(grey.shape)
    grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    orb = cv2.ORB_create(nfeatures=n_features)
    return orb.detectAndCompute(grey, None)


def _inliers(fa, fb, ratio: float) -> int:
    (ka, da), (kb, db) = fa, fb
    if da is None or db is None or len(ka) < 8 or len(kb) < 8:
        return 0
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    good = [m for m, n in (p for p in matcher.knnMatch(da, db, k=2) if len(p) == 2)
            if m.distance < ratio * n.distance]
    if len(good) < 8:
        return 0
    src = np.float32([ka[m.queryIdx].pt for m in good])
    dst = np.float32([kb[m.trainIdx].pt for m in good])
    _, mask = cv2.findHomography(src, dst, cv2.RANSAC, 6.0)
    return 0 if mask is None else int(mask.sum())


def _borders(image: AnnotatedImage) -> dict[str, np.ndarray]:
    """The two outermost pixel lines of each side, grey, as float (outermost first)."""
    grey = cv2.cvtColor(image.load_pixels(), cv2.COLOR_RGB2GRAY).astype(np.float64)
    return {"left": grey[:, :2].T, "right": grey[:, ::-1][:, :2].T,
            "top": grey[:2], "bottom": grey[::-1][:2]}


def _continues(a: np.ndarray, b: np.ndarray, max_ratio: float, min_corr: float) -> bool:
    """Whether border lines ``a`` and ``b`` (outermost first) meet at a seam."""
    if a.shape != b.shape:
        return False
    seam = np.abs(a[0] - b[0]).mean()
    inside = 0.5 * (np.abs(a[0] - a[1]).mean() + np.abs(b[0] - b[1]).mean())
    if a[0].std() == 0 or b[0].std() == 0:
        return False
    return seam <= max_ratio * max(inside, 1e-6) and \
        float(np.corrcoef(a[0], b[0])[0, 1]) >= min_corr


def adjacent_pairs(images: list[AnnotatedImage], max_ratio: float = 2.0,
                   min_corr: float = 0.8) -> list[tuple[int, int]]:
    """Index pairs (i, j) where image j continues image i to its right or below."""
    borders = [_borders(img) for img in images]
    pairs = []
    for i, bi in enumerate(borders):
        for j, bj in enumerate(borders):
            if i != j and (_continues(bi["right"], bj["left"], max_ratio, min_corr)
                           or _continues(bi["bottom"], bj["top"], max_ratio, min_corr)):
                pairs.append((i, j))
    return pairs


def lookalike_groups(images: list[AnnotatedImage], side: int = 1024, n_features: int = 1500,
                     ratio: float = 0.75, min_inliers: int = 25, orb: bool = True,
                     adjacent: bool = False) -> dict[str, str]:
    """Map each image id to a group name (the first id of its group, sorted): images linked
    by ORB matches (``orb``) and, with ``adjacent``, tiles whose borders continue each other."""
    parent = list(range(len(images)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if adjacent:
        for i, j in adjacent_pairs(images):
            parent[find(j)] = find(i)
    if orb:
        feats = [_features(img, side, n_features) for img in images]
        for i in range(len(images)):
            for j in range(i + 1, len(images)):
                if find(i) != find(j) and _inliers(feats[i], feats[j], ratio) >= min_inliers:
                    parent[find(j)] = find(i)
    members: dict[int, list[str]] = {}
    for i, img in enumerate(images):
        members.setdefault(find(i), []).append(img.image_id)
    return {image_id: f"place:{min(ids)}" for ids in members.values() for image_id in ids}
