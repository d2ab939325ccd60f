"""What an upload says about its scene: the metadata model, and the error the intake answers.

``SceneMetadata`` is the home-made metadata object (``onboard.stac_intake`` reads a STAC
Item into it); each number goes through the one rule every input meets (``shared.limits``),
the one the ground applies on the link. ``IntakeError`` carries the HTTP status a client can
act on.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared import limits
from shared.scene_ids import RULE as SCENE_ID_RULE
from shared.scene_ids import valid_scene_id


class IntakeError(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


class SceneMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scene_id: str | None = None
    gsd_m: float | None = None  # shared.limits.GSD_M
    capture_time: datetime | None = None
    geotransform: list[float] | None = None
    crs: str = "local"
    # The classes to count (default: every class the counter counts).
    classes: list[str] | None = Field(None, min_length=1, max_length=16)

    @field_validator("scene_id")
    @classmethod
    def _id(cls, v: str | None) -> str | None:
        if v is not None and not valid_scene_id(v):
            raise ValueError(f"scene_id: {SCENE_ID_RULE}")
        return v

    # One rule for every number (shared.limits), the one the ground applies on the link.
    @field_validator("gsd_m")
    @classmethod
    def _gsd(cls, v: float | None) -> float | None:
        return None if v is None else limits.check_gsd(v, "gsd_m")

    @field_validator("geotransform")
    @classmethod
    def _gt(cls, v: list[float] | None) -> list[float] | None:
        if v is not None:
            limits.check_geotransform(v)  # 6 finite numbers of sane size, not singular
        return v

    @field_validator("crs")
    @classmethod
    def _crs(cls, v: str) -> str:
        return limits.check_crs(v)
