"""The pipeline's settings for one run: policy, confidence band, JPEG qualities, tiling,
deduplication, the exploration share and the treatment of tiles nobody counted; checked when
built.

A configuration is also a JSON file of these fields (``save``, ``load``; a field left out
keeps its default): what an experiment writes for the configuration it ran, and what the
onboard service deploys as is (its ``pipeline_file`` setting). Of these, ``discarded`` and
``uncounted`` are how a scene's total is aggregated, which nothing onboard reads: deployed,
they are the ground's settings (``discarded_tiles``, ``uncounted_tiles``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from shared.pipeline.aggregation import check_treatments
from shared.pipeline.exploration import check_share
from shared.pipeline.selection import check_thresholds
from shared.pipeline.throttling import POLICIES


@dataclass(frozen=True)
class PipelineConfig:
    policy: str = "value"
    conf_p: float = 0.0
    conf_q: float = 0.9
    raw_quality: int = 90  # the JPEG quality tiles are "raw" at (vanilla, budgets, paper policies)
    # What the value policy may choose from. Not 30: on the validation split q30 tiles cost
    # 0.35-0.43 objects of CMAE per scene more than q50-90 (a loss the error model, fit on
    # training tiles, does not see).
    qualities: tuple[int, ...] = (50, 75, 90)
    adaptive_tiling: bool = True
    dedup: bool = True
    k_max: int = 8
    # Downlinked tiles go down as the counter sees them (resized to its input, as the paper
    # tiles onboard): the ground counter needs no more pixels than that. False: native
    # resolution. The bent pipes decide for themselves (``sends_resized``).
    downlink_resized: bool = True
    discarded: str = "onboard"
    uncounted: str = "context"
    seed: int = 0
    # The share of each scene's downlink bytes spent on tiles drawn at random among those
    # accepted onboard (``exploration``: the ground's unbiased sample of the onboard
    # counter's errors); 0: none, at most ``exploration.MAX_SHARE``.
    exploration_share: float = 0.0

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; one of {sorted(POLICIES)}")
        check_thresholds(self.conf_p, self.conf_q)
        for q in (self.raw_quality, *self.qualities):
            if not (isinstance(q, int) and 1 <= q <= 100):
                raise ValueError(f"JPEG qualities must be integers in [1, 100], got {q!r}")
        if self.k_max < 1:
            raise ValueError(f"k_max must be >= 1, got {self.k_max}")
        check_treatments(self.discarded, self.uncounted)
        check_share(self.exploration_share)

    def save(self, path: Path | str) -> Path:
        Path(path).write_text(json.dumps(asdict(self), indent=1) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: Path | str) -> PipelineConfig:
        """The configuration a file holds; ValueError naming what is wrong with it."""
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a pipeline configuration: {exc}") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: a pipeline configuration is a JSON object")
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"{path}: unknown pipeline fields {sorted(unknown)}")
        if "qualities" in raw:
            raw["qualities"] = tuple(raw["qualities"])
        try:
            return cls(**raw)
        except TypeError as exc:
            raise ValueError(f"{path}: {exc}") from None

    @property
    def sends_resized(self) -> bool:
        """Whether downlinked tiles go down resized to the counter's input: as
        ``downlink_resized`` says for the collaborative policies; never for the native bent
        pipe (``vanilla``), always for ``vanilla-resized``."""
        if self.policy in ("vanilla", "vanilla-resized"):
            return self.policy == "vanilla-resized"
        return self.downlink_resized

    @property
    def all_qualities(self) -> tuple[int, ...]:
        return tuple(sorted({self.raw_quality, *self.qualities}))
