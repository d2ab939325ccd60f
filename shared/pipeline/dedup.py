"""Deduplication: count one tile of each group of near-duplicates and reuse its count.

Two sources of duplicates (TargetFuse section C):

* **Within a scene (contexts).** Each tile gets a low-dimensional descriptor: the first 4
  Hu moments (log magnitudes; the higher ones of textured tiles flip sign with noise) of its
  grey image and of its gradient magnitude (invariant to
  translation, scale and rotation, as objects have any heading) plus per-channel mean and
  spread. Descriptors are standardised and grouped by k-means (scikit-learn, Euclidean
  distance); the number of contexts k is the one with the best silhouette score over
  2..k_max (the silhouette rewards tight, well separated clusters and needs no prior on k;
  with fewer than 4 tiles there is one context). In each context the tile nearest the
  centroid is counted first; every other member is compared with the context's counted
  tiles (at most ``VERIFY_CANDIDATES``, the nearest in descriptor space, so the cost per
  tile is bounded) and reuses a count only when :func:`near_duplicate` verifies the pair,
  otherwise it is counted itself (moments alone call many different parking lots alike).
* **Revisits (cache).** When a scene's footprint is known, :class:`RevisitCache` keeps a
  low-resolution mosaic of each counted scene: grey thumbnails and the onboard density map,
  in ground coordinates. A tile of a later scene whose ground footprint an earlier scene
  covered is compared with that scene's mosaic over the same ground; if verified, its count
  is the earlier density integrated over the tile's footprint (so it is right even though
  the two captures' tile grids do not line up).

Verification (:func:`near_duplicate`) works on 64-px grey thumbnails: the second's grey
levels are mapped onto the first's by quantiles (revisits differ in gain, offset and gamma),
and the pair passes only if the residual is small everywhere: its RMS and its largest local
(3x3 mean) value stay under thresholds set on revisits (real Airbus scenes revisited by
``revisit_real`` and synthetic ones with moved/added/removed objects, 512-px tiles):
RMS <= 10 and local <= 30, required in both directions, accept 87 % of unchanged revisit
tiles, none of the 16 tiles whose objects changed (their local residual was 47 or more) and
none of 2,616 pairs of different tiles of one scene.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from dataclasses import dataclass, field

import cv2
import numpy as np

from shared.annotations import Footprint

THUMB = 64
RMS_TOL = 10.0  # grey levels
LOCAL_TOL = 30.0  # grey levels, largest 3x3 mean of |residual|


def grey(tile: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(tile), cv2.COLOR_RGB2GRAY)


def thumbnail(tile: np.ndarray, tile_size: int, grey_tile: np.ndarray | None = None
              ) -> np.ndarray:
    """Grey thumbnail at ``THUMB / tile_size`` of the source resolution (partial tiles give a
    proportionally smaller one); ``grey_tile``: ``grey(tile)`` when already made."""
    h, w = tile.shape[:2]
    f = THUMB / tile_size
    size = (max(1, round(w * f)), max(1, round(h * f)))
    # uint8, as resizing a uint8 image gives: every grey level is whole, so this is exactly
    # what a float copy would hold, in a quarter of the memory (a plan keeps one per tile).
    return cv2.resize(grey(tile) if grey_tile is None else grey_tile, size,
                      interpolation=cv2.INTER_AREA)


def _log_hu(img: np.ndarray) -> np.ndarray:
    # The first four Hu moments, log magnitudes: the higher ones of a textured tile are tiny
    # and flip sign with noise, which would make Euclidean distances meaningless.
    hu = cv2.HuMoments(cv2.moments(img.astype(np.float32))).ravel()[:4]
    return np.log10(np.abs(hu) + 1e-30)


def descriptor(tile: np.ndarray, grey_tile: np.ndarray | None = None) -> np.ndarray:
    """Hu moments of the grey image and of its gradient magnitude, channel mean and spread
    (``grey_tile``: ``grey(tile)`` when already made)."""
    g = (grey(tile) if grey_tile is None else grey_tile).astype(np.float32)
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
    mag = cv2.magnitude(gx, gy)
    # cv2.meanStdDev: the same per-channel mean and (population) spread as numpy's, about
    # 50x faster on a 512 px tile (it was most of planning's time).
    mean, spread = cv2.meanStdDev(np.ascontiguousarray(tile))
    stats = np.concatenate([mean.ravel(), spread.ravel()]) / 255.0
    return np.concatenate([_log_hu(g), _log_hu(mag), stats])


QUANTILES = np.linspace(0, 100, 65)


@functools.lru_cache(maxsize=64)
def _quantile_points(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For n values: the order statistics each of ``QUANTILES`` lies between, its weight
    towards the upper one, and where numpy interpolates from the upper one (as
    ``np.percentile``'s linear method does, so the results are the same to the bit)."""
    v = (n - 1) * np.true_divide(QUANTILES, 100)
    lo = np.floor(v).astype(np.intp)
    t = v - lo
    return lo, np.minimum(lo + 1, n - 1), t, t >= 0.5


def grey_quantiles(a: np.ndarray) -> np.ndarray:
    """The grey levels at ``QUANTILES`` percent of a thumbnail (what quantile mapping reads):
    ``np.percentile``'s values. A uint8 thumbnail's come from its histogram (each order
    statistic is the first level whose cumulative count passes its rank: no sort, about 20x
    faster; verification reads them for every tile it compares)."""
    if a.dtype != np.uint8 or a.size == 0:
        return np.percentile(a.astype(np.float64).ravel(), QUANTILES)
    cumulative = np.cumsum(np.bincount(a.ravel(), minlength=256))
    lo, hi, t, upper = _quantile_points(a.size)
    below = np.searchsorted(cumulative, lo, side="right").astype(np.float64)
    above = np.searchsorted(cumulative, hi, side="right").astype(np.float64)
    step = above - below
    out = below + step * t
    np.subtract(above, step * (1 - t), out=out, where=upper)  # numpy's lerp, both halves
    return out


def _mapped_residual(a: np.ndarray, b: np.ndarray, qa: np.ndarray, qb: np.ndarray
                     ) -> np.ndarray:
    """|a - b| after mapping b's grey levels onto a's by quantiles, float64, a's shape."""
    # Quantile mapping: a revisit's gain, offset and gamma change every grey level
    # monotonically; a moved object changes only its own pixels.
    if b.dtype == np.uint8:
        # Whole grey levels (a tile's thumbnail): the mapping of each of the 256 levels,
        # looked up (the same values as interpolating every pixel, at a tenth of the cost).
        mapped = np.interp(np.arange(256.0), qb, qa)[b]
    else:
        mapped = np.interp(b.astype(np.float64), qb, qa)
    return np.abs(mapped - a)


def residual(a: np.ndarray, b: np.ndarray, qa: np.ndarray | None = None,
             qb: np.ndarray | None = None) -> tuple[float, float]:
    """RMS and largest local (3x3 mean) |a - b| after mapping b's grey levels onto a's;
    ``qa``/``qb``: their ``grey_quantiles`` when known (verification compares each tile with
    many: computing them once per tile is most of its cost saved)."""
    qa = grey_quantiles(a) if qa is None else qa
    qb = grey_quantiles(b) if qb is None else qb
    resid = _mapped_residual(a, b, qa, qb)
    local = cv2.blur(resid.astype(np.float32), (3, 3))
    return math.sqrt(float((resid ** 2).mean())), float(local.max())


# The cheap rejection before the full comparison: blocks of BOUND_BLOCK x BOUND_BLOCK
# thumbnail pixels.
BOUND_BLOCK = 4


@dataclass(frozen=True)
class BlockStats:
    """A uint8 thumbnail's mean, least and greatest grey level in each whole block."""

    mean: np.ndarray  # float64, exact (integer sums over BOUND_BLOCK ** 2)
    low: np.ndarray  # uint8
    high: np.ndarray  # uint8
    pixels: int  # the thumbnail's pixels (all of them, not only the blocks')


@functools.lru_cache(maxsize=32)
def _block_summers(hb: int, wb: int) -> tuple[np.ndarray, np.ndarray]:
    """0/1 matrices L (hb/B, hb) and R (wb, wb/B): L @ thumb @ R sums each B x B block
    (exactly: integer sums far below 2**53)."""
    b = BOUND_BLOCK
    return np.kron(np.eye(hb // b), np.ones((1, b))), np.kron(np.eye(wb // b), np.ones((b, 1)))


_BLOCK_KERNEL = np.ones((BOUND_BLOCK, BOUND_BLOCK), np.uint8)


def block_stats(thumb: np.ndarray) -> BlockStats | None:
    """``BlockStats`` of a uint8 thumbnail (None: not uint8, or smaller than a block). The
    sums by two small matrix products, the least and greatest levels by an erosion and a
    dilation whose window starts at each block's corner (a fraction of the cost of numpy
    reductions over a 4-D view, the same values)."""
    b = BOUND_BLOCK
    h, w = thumb.shape[:2]
    hb, wb = h // b * b, w // b * b
    if thumb.dtype != np.uint8 or not hb or not wb:
        return None
    whole = np.ascontiguousarray(thumb[:hb, :wb])
    left, right = _block_summers(hb, wb)
    sums = left @ whole.astype(np.float64) @ right
    low = cv2.erode(whole, _BLOCK_KERNEL, anchor=(0, 0))[::b, ::b]
    high = cv2.dilate(whole, _BLOCK_KERNEL, anchor=(0, 0))[::b, ::b]
    return BlockStats(sums.ravel() / (b * b), low.ravel(), high.ravel(), thumb.size)


def rms_lower_bound(lut: np.ndarray, sa: BlockStats, sb: BlockStats) -> float:
    """A lower bound on the RMS of ``|lut[b] - a|`` from the blocks alone: in each block
    the mean of squares is at least the square of the mean (Jensen), the mean of
    ``lut[b]`` lies between ``lut`` of the block's least and greatest level (``lut`` is
    monotone), and the pixels outside whole blocks add nothing negative."""
    return float(rms_lower_bounds(lut[None], [sa], sb)[0])


def rms_lower_bounds(luts: np.ndarray, sa: list[BlockStats], sb: BlockStats) -> np.ndarray:
    """``rms_lower_bound`` of many pairs at once: ``luts`` (m, 256), one per candidate,
    ``sa`` their thumbnails' block statistics (all of one shape), ``sb`` the tile's."""
    lo, hi = luts[:, sb.low], luts[:, sb.high]
    mean = np.stack([s.mean for s in sa])
    gap = np.maximum(lo - mean, 0.0) + np.maximum(mean - hi, 0.0)
    return np.sqrt((gap * gap).sum(axis=1) * BOUND_BLOCK ** 2 / sa[0].pixels)


def _within(a: np.ndarray, b: np.ndarray, qa: np.ndarray, qb: np.ndarray, rms_tol: float,
            local_tol: float, *, sa: BlockStats | None = None,
            sb: BlockStats | None = None) -> bool:
    """``residual(a, b)`` within both tolerances; the local one only computed when the RMS
    passes (most pairs of different tiles fail on it), and the RMS only when the blocks'
    lower bound on it (``rms_lower_bound``, given both thumbnails' ``block_stats``) does
    not already exceed its tolerance: the same verdict, most different pairs rejected at
    a fraction of the cost."""
    if sa is not None and sb is not None and b.dtype == np.uint8:
        lut = np.interp(np.arange(256.0), qb, qa)
        # A hair of margin: the bound's own rounding can never reject a pair that passes.
        if rms_lower_bound(lut, sa, sb) > rms_tol * (1 + 1e-9) + 1e-9:
            return False
        resid = np.abs(lut[b] - a)
    else:
        resid = _mapped_residual(a, b, qa, qb)
    if math.sqrt(float((resid ** 2).mean())) > rms_tol:
        return False
    return float(cv2.blur(resid.astype(np.float32), (3, 3)).max()) <= local_tol


def near_duplicate(a: np.ndarray, b: np.ndarray, rms_tol: float = RMS_TOL,
                   local_tol: float = LOCAL_TOL, *, qa: np.ndarray | None = None,
                   qb: np.ndarray | None = None, sa: BlockStats | None = None,
                   sb: BlockStats | None = None) -> bool:
    """Do grey thumbnails ``a`` and ``b`` show the same ground with the same objects?
    (``sa``/``sb``: their ``block_stats``, for the cheap rejection.)"""
    if a.shape != b.shape or a.size < 4:
        return False
    qa = grey_quantiles(a) if qa is None else qa
    qb = grey_quantiles(b) if qb is None else qb
    # Both ways: the grey-level mapping is one-directional, the answer must not be (the
    # second only when the first passes).
    return _within(a, b, qa, qb, rms_tol, local_tol, sa=sa, sb=sb) and \
        _within(b, a, qb, qa, rms_tol, local_tol, sa=sb, sb=sa)


SILHOUETTE_SAMPLE = 1000


def choose_k(x: np.ndarray, k_max: int = 8, seed: int = 0) -> tuple[int, np.ndarray]:
    """Number of contexts by the best silhouette over 2..k_max, and the labels."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import pairwise_distances, silhouette_score
    from threadpoolctl import threadpool_limits

    n = len(x)
    if n < 4:
        return 1, np.zeros(n, np.int64)
    best = (-2.0, 1, np.zeros(n, np.int64))
    distinct = len(np.unique(np.round(x, 6), axis=0))
    # Silhouette is O(n^2) in tiles: above SILHOUETTE_SAMPLE tiles, a seeded sample (the
    # one silhouette_score draws: its first permutation of the tiles), whose distances are
    # computed once for every k (they do not depend on the labels).
    sample = np.random.RandomState(seed).permutation(n)[:min(n, SILHOUETTE_SAMPLE)]
    # One thread: the onboard CPU budget, and a result that cannot depend on how parallel
    # partial sums happen to be scheduled (one limit for the whole search: entering it
    # inspects every loaded library).
    with threadpool_limits(1):
        distances = pairwise_distances(x[sample])
        for k in range(2, min(k_max, n - 1, distinct) + 1):
            labels = KMeans(k, n_init=4, random_state=seed).fit_predict(x)
            if len(set(labels)) < 2 or len(set(labels[sample])) < 2:
                continue
            score = silhouette_score(distances, labels[sample], metric="precomputed")
            if score > best[0]:
                best = (score, k, labels)
    return best[1], best[2]


@dataclass
class ContextPlan:
    contexts: np.ndarray  # (n,) context id per tile
    order: np.ndarray  # tiles in the order to consider them (representatives first)
    k: int
    # (counted tile, tile) -> near-duplicate verdict, where plans are replayed over the same
    # tiles (the simulator sets a dict): the thumbnails never change, so a pair is verified
    # once however many plans (budgets, policies) are made. None (the service: one plan per
    # scene) keeps nothing, as the memo of a huge scene would grow with its tiles squared.
    verified: dict[tuple[int, int], bool] | None = field(default=None, repr=False)
    # tile -> its thumbnail's grey quantiles, computed once (n small vectors, always kept)
    quantiles: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    # (n, d) standardised descriptors: which counted tiles a tile is verified against
    z: np.ndarray | None = field(default=None, repr=False)
    # tile -> its thumbnail's block statistics (the cheap rejection), the most recently
    # used BLOCK_CACHE tiles' only (1 kB a tile)
    blocks: OrderedDict[int, BlockStats | None] = field(default_factory=OrderedDict,
                                                        repr=False)


def plan_contexts(descriptors: np.ndarray, k_max: int = 8, seed: int = 0) -> ContextPlan:
    """Contexts of a scene's tiles and a counting order: each context's representative (the
    tile nearest its centroid) first, in context order, then the others by distance."""
    x = np.asarray(descriptors, float)
    if len(x) == 0:
        return ContextPlan(np.zeros(0, np.int64), np.zeros(0, np.int64), 0)
    z = (x - x.mean(0)) / (x.std(0) + 1e-9)
    k, labels = choose_k(z, k_max, seed)
    dist = np.zeros(len(z))
    for c in range(k):
        sel = labels == c
        dist[sel] = np.linalg.norm(z[sel] - z[sel].mean(0), axis=1)
    # Ties (two members are equally far from their centroid) go to the lower index: without
    # rounding, the last bit of a SIMD sum (which depends on memory alignment) would decide.
    dist = np.round(dist, 9)
    reps = [int(np.flatnonzero(labels == c)[np.argmin(dist[labels == c])])
            for c in range(k) if (labels == c).any()]
    first = set(reps)
    rest = [i for i in np.lexsort((np.arange(len(z)), dist)) if i not in first]
    return ContextPlan(labels, np.array(reps + rest, np.int64), k, z=z)


# Verification is bounded per tile: a tile is compared with at most this many counted tiles
# of its context, the nearest in descriptor space (a near-duplicate has nearly the same
# moments and channel statistics), so planning costs O(tiles), not O(tiles^2) pairs of
# thumbnails. A context with no more counted tiles than this is verified exactly as before.
VERIFY_CANDIDATES = 16
BLOCK_CACHE = 4096


def _nearest(i: int, plan: ContextPlan, counted: np.ndarray) -> np.ndarray:
    """The ``VERIFY_CANDIDATES`` tiles of ``counted`` nearest tile i's descriptor, in
    ``counted``'s order (ties: the earlier counted)."""
    if len(counted) <= VERIFY_CANDIDATES or plan.z is None:
        return counted
    d = np.round(((plan.z[counted] - plan.z[i]) ** 2).sum(1), 9)  # as in plan_contexts
    keep = np.lexsort((np.arange(len(counted)), d))[:VERIFY_CANDIDATES]
    return counted[np.sort(keep)]


def reuse_source(i: int, plan: ContextPlan, counted: list[int], thumbs: list[np.ndarray]
                 ) -> int | None:
    """A counted tile of tile i's context that verifies as its near-duplicate, if any
    (``counted``: in counting order; the caller may pass only i's context's); at most
    ``VERIFY_CANDIDATES`` of them, the nearest, are verified. The cheap rejection
    (``rms_lower_bounds``, one way) is made for all of them at once, so the candidates it
    rejects cost no thumbnail comparison and no call of their own: the same verdicts as
    ``near_duplicate`` pair by pair."""
    def q(k: int) -> np.ndarray:
        if k not in plan.quantiles:
            plan.quantiles[k] = grey_quantiles(thumbs[k])
        return plan.quantiles[k]

    def stats(k: int, thumb: np.ndarray | None) -> BlockStats | None:
        if k in plan.blocks:
            plan.blocks.move_to_end(k)
            return plan.blocks[k]
        plan.blocks[k] = block_stats(thumb)
        while len(plan.blocks) > BLOCK_CACHE:
            plan.blocks.popitem(last=False)
        return plan.blocks[k]

    same = np.asarray(counted, np.int64)
    same = same[plan.contexts[same] == plan.contexts[i]]
    candidates = _nearest(i, plan, same).tolist()
    known = plan.verified or {}
    unknown = [j for j in candidates if (j, i) not in known]
    if not unknown:
        return next((j for j in candidates if known[(j, i)]), None)
    mine = thumbs[i]
    mine_stats, qi = stats(i, mine), q(i)  # kept: i is a candidate once it is counted

    def cached_stats(j: int) -> BlockStats | None:  # without reading j's thumbnail when kept
        return stats(j, None) if j in plan.blocks else stats(j, thumbs[j])

    rejected: set[int] = set()
    if mine_stats is not None and mine.dtype == np.uint8:
        # Candidates whose thumbnail has mine's shape (block statistics of as many blocks and
        # pixels) are bounded together; any other shape is never a near-duplicate.
        alike = [(j, st) for j in unknown if (st := cached_stats(j)) is not None
                 and st.pixels == mine_stats.pixels and len(st.mean) == len(mine_stats.mean)]
        if alike:
            luts = _interp_rows(qi, np.stack([q(j) for j, _ in alike]))
            bound = rms_lower_bounds(luts, [st for _, st in alike], mine_stats)
            # The same hair of margin as ``_within``'s: rounding never rejects a passing pair.
            rejected = {j for (j, _), b in zip(alike, bound.tolist(), strict=True)
                        if b > RMS_TOL * (1 + 1e-9) + 1e-9}
    for j in candidates:
        if (j, i) in known:
            verdict = known[(j, i)]
        elif j in rejected:
            verdict = False
        else:
            other = thumbs[j]
            verdict = near_duplicate(other, mine, qa=q(j), qb=qi, sa=stats(j, other),
                                     sb=mine_stats)
        if plan.verified is not None:
            plan.verified[(j, i)] = verdict
        if verdict:
            return j
    return None


def _interp_rows(xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``np.interp(range(256), xp, row)`` for every row of ``fp`` (m, len(xp)) at once, by
    np.interp's own formula (the slope of the segment holding each level; the ends held)."""
    x = np.arange(256.0)
    j = np.clip(np.searchsorted(xp, x, side="right") - 1, 0, len(xp) - 2)
    inside = (x >= xp[0]) & (x < xp[-1])
    dx = np.where(inside, xp[j + 1] - xp[j], 1.0)
    slope = (fp[:, j + 1] - fp[:, j]) / dx
    out = slope * (x - xp[j]) + fp[:, j]
    out[:, x < xp[0]] = fp[:, :1]
    out[:, x >= xp[-1]] = fp[:, -1:]
    return out


@dataclass
class _Mosaic:
    footprint: Footprint
    thumb: np.ndarray  # grey (uint8 from the service), at THUMB / tile_size of the source
    density: np.ndarray  # onboard count per mosaic pixel
    valid: np.ndarray  # bool: pixel was counted (not reused from elsewhere / not uncounted)
    px: float  # source pixels per mosaic pixel
    confidence: np.ndarray | None = None  # the counting tile's confidence per pixel
    class_shares: np.ndarray | None = None  # each class's share of the scene's counts

    @property
    def nbytes(self) -> int:
        arrays = (self.thumb, self.density, self.valid, self.confidence)
        return sum(a.nbytes for a in arrays if a is not None)


class RevisitCache:
    """Earlier scenes' thumbnails and onboard densities, keyed by ground footprint.

    Holds up to ``capacity`` scenes and, with ``max_bytes``, no more than that many bytes of
    mosaics (least recently used dropped first; a scene whose mosaic alone is larger is not
    kept): a 20k x 20k scene's mosaic is tens of MB, so the onboard service sizes this from
    its memory limit. Only axis-aligned footprints of the same ground sample distance are
    compared.
    """

    def __init__(self, capacity: int = 32, max_bytes: int | None = None):
        if capacity < 1:
            raise ValueError(f"revisit cache capacity must be >= 1, got {capacity}")
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"revisit cache max_bytes must be >= 0, got {max_bytes}")
        self.capacity, self.max_bytes = capacity, max_bytes
        self._scenes: OrderedDict[str, _Mosaic] = OrderedDict()

    def __len__(self) -> int:
        return len(self._scenes)

    @property
    def nbytes(self) -> int:
        return sum(m.nbytes for m in self._scenes.values())

    def fits(self, nbytes: int) -> bool:
        """Whether a mosaic of ``nbytes`` would be kept (so a scene too large for the cache
        need not build one)."""
        return self.max_bytes is None or nbytes <= self.max_bytes

    @staticmethod
    def usable(fp: Footprint | None) -> bool:
        return fp is not None and fp.geotransform[2] == 0 and fp.geotransform[4] == 0

    def add(self, scene_id: str, fp: Footprint | None, mosaic_thumb: np.ndarray,
            mosaic_density: np.ndarray, valid: np.ndarray, px: float, *,
            confidence: np.ndarray | None = None,
            class_shares: np.ndarray | None = None) -> None:
        if not self.usable(fp):
            return
        mosaic = _Mosaic(fp, mosaic_thumb, mosaic_density, valid, px, confidence,
                         class_shares)
        self._scenes.pop(scene_id, None)
        if not self.fits(mosaic.nbytes):
            return
        self._scenes[scene_id] = mosaic
        while len(self._scenes) > self.capacity or (
                self.max_bytes is not None and self.nbytes > self.max_bytes):
            self._scenes.popitem(last=False)

    def class_shares(self, scene_id: str) -> np.ndarray | None:
        """Each class's share of an earlier capture's counts (None: unknown, or gone)."""
        m = self._scenes.get(scene_id)
        return None if m is None else m.class_shares

    def lookup(self, fp: Footprint | None, x0: int, y0: int, thumb: np.ndarray, px: float
               ) -> tuple[float, str, float] | None:
        """The count of the tile at source pixel (x0, y0) of a scene with footprint ``fp``
        whose thumbnail is ``thumb``, from a verified earlier capture; that capture's id; and
        the lowest confidence of the earlier tiles it comes from (NaN if unknown)."""
        if not self.usable(fp):
            return None
        gx, gy = fp.pixel_to_ground(x0, y0)
        h, w = thumb.shape
        for scene_id in reversed(self._scenes):
            m = self._scenes[scene_id]
            if not np.isclose(m.footprint.geotransform[1], fp.geotransform[1], rtol=1e-6) or \
                    not np.isclose(m.footprint.geotransform[5], fp.geotransform[5], rtol=1e-6) \
                    or m.footprint.crs != fp.crs or not math.isclose(m.px, px, rel_tol=1e-6):
                continue
            sx, sy = m.footprint.ground_to_pixel(gx, gy)
            mx, my = sx / px, sy / px  # tile origin in mosaic pixels
            if mx < 0 or my < 0 or mx + w > m.thumb.shape[1] or my + h > m.thumb.shape[0]:
                continue
            region = _shift_crop(m.thumb, mx, my, w, h)
            valid = _shift_crop(m.valid.astype(np.float32), mx, my, w, h)
            if valid.min() < 0.999 or not near_duplicate(region, thumb):
                continue
            self._scenes.move_to_end(scene_id)
            region_conf = np.array([np.nan]) if m.confidence is None else \
                _crop_nearest(m.confidence, mx, my, w, h)
            known = region_conf[~np.isnan(region_conf)]
            conf = float(known.min()) if known.size else float("nan")
            return float(_shift_crop(m.density, mx, my, w, h).sum()), scene_id, conf
        return None


def _shift_crop(img: np.ndarray, x: float, y: float, w: int, h: int) -> np.ndarray:
    """``img`` sampled on a w x h grid starting at sub-pixel (x, y), bilinear."""
    # Only the pixels bilinear sampling can reach are converted and warped: the whole
    # mosaic per looked-up tile made revisit lookups O(tiles^2) a scene.
    x0, y0 = max(int(math.floor(x)), 0), max(int(math.floor(y)), 0)
    img = np.asarray(img[y0:y0 + h + 2, x0:x0 + w + 2], np.float32)
    m = np.float32([[1, 0, x - x0], [0, 1, y - y0]])
    return cv2.warpAffine(img, m, (w, h),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _crop_nearest(img: np.ndarray, x: float, y: float, w: int, h: int) -> np.ndarray:
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    return img[y0:y0 + h + 1, x0:x0 + w + 1]


def mosaic_density(density: np.ndarray, tile_hw: tuple[int, int], tile_size: int,
                   thumb_shape: tuple[int, int]) -> np.ndarray:
    """A tile's density map resampled onto its thumbnail grid, its mass (the count) kept.

    The counter input holds the tile resized by ``input / tile_size`` at its top left, so a
    partial tile of ``tile_hw`` source pixels fills only that share of the density map."""
    dh, dw = density.shape
    h, w = tile_hw
    crop = density[: max(1, math.ceil(h * dh / tile_size)), : max(1, math.ceil(w * dw / tile_size))]
    out = cv2.resize(crop.astype(np.float32), (thumb_shape[1], thumb_shape[0]),
                     interpolation=cv2.INTER_AREA)
    mass, total = float(density.sum()), float(out.sum())
    return out * (mass / total) if abs(total) > 1e-12 else out
