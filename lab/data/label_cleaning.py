"""Removing duplicate annotations: the same object labelled twice.

Published annotation files are not always clean. In the Airbus aircraft sample, five of the
75 scenes carry a second, slightly shifted box for (nearly) every aircraft: 127 extra labels
whose boxes overlap another with IoU between 0.5 and 1.0, while no two distinct aircraft
anywhere in the set overlap by more than IoU 0.1. Counting those scenes against the raw
labels doubles their truth.

``merge_duplicates`` links objects whose axis-aligned boxes overlap by more than
``iou_threshold`` (default 0.3, inside the empty gap between the two populations) and keeps
the first object of each linked group. The readers never do this (they report files as they
are); training and evaluation apply it, and say how many labels they dropped.
"""

from __future__ import annotations

import numpy as np

from shared.annotations import ObjectAnnotation

DEFAULT_IOU = 0.3


def box_iou_matrix(boxes: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) boxes (xmin, ymin, xmax, ymax)."""
    x0 = np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    y0 = np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    x1 = np.minimum(boxes[:, None, 2], boxes[None, :, 2])
    y1 = np.minimum(boxes[:, None, 3], boxes[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area[:, None] + area[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def merge_duplicates(objects: list[ObjectAnnotation], iou_threshold: float = DEFAULT_IOU
                     ) -> tuple[list[ObjectAnnotation], int]:
    """(objects with duplicates removed, number removed); order of the kept ones preserved."""
    if iou_threshold <= 0 or len(objects) < 2:
        return list(objects), 0
    if iou_threshold >= 1:
        raise ValueError(f"IoU threshold must be below 1, got {iou_threshold}")
    iou = box_iou_matrix(np.array([o.box for o in objects], dtype=np.float64))
    np.fill_diagonal(iou, 0.0)
    keep, dropped = [], set()
    for i, obj in enumerate(objects):
        if i in dropped:
            continue
        keep.append(obj)
        # Everything linked to a kept object, directly or through a chain, is its duplicate.
        stack = [i]
        while stack:
            j = stack.pop()
            for k in np.nonzero(iou[j] > iou_threshold)[0]:
                if k not in dropped and k != i:
                    dropped.add(int(k))
                    stack.append(int(k))
    return keep, len(objects) - len(keep)
