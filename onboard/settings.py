"""The onboard service's settings: one typed class, read from ``TARGETFUSE_ONBOARD_*``
environment variables (or given directly), validated when built.

They only validate: building them checks each value and that the values fit together, and
reads no contact plan, keys or certificate and writes no file (what needs the disk is done
when the service starts: ``onboard.startup``). The one file read is the pipeline
configuration's, a few hundred bytes, so a bad one is refused as a bad setting.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.model_bundle import MODELS_DIR
from shared.pipeline.config import PipelineConfig
from shared.pipeline.exploration import MAX_SHARE
from shared.pipeline.throttling import POLICIES
from shared.wire.tls import check_pair


class OnboardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TARGETFUSE_ONBOARD_", extra="forbid")

    http_host: str = "127.0.0.1"  # loopback unless told: compose binds what it needs
    http_port: int = Field(8080, ge=0, le=65535)
    data_dir: Path = Path("out/onboard")
    ground_target: str = "127.0.0.1:50051"
    # TLS on the link (shared/wire/tls.py), on unless told: the CA that signed the ground's
    # certificate (None: the system's CAs; a ground that made its own at first start needs
    # its link-ca.pem here), the name it was issued for when the target is an address, and
    # this satellite's own certificate and key for mutual TLS. link_tls=false: plaintext.
    link_tls: bool = True
    ground_tls_ca_file: Path | None = None
    ground_tls_server_name: str | None = None
    # Authentication (shared/api_keys.py), on unless told: REST routes need one of the keys
    # of api_keys_file (made in data_dir at first start when not given); the link presents
    # the key in ground_key_file (one of the ground's link keys) with every call.
    auth: bool = True
    api_keys_file: Path | None = None
    ground_key_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    model: str = "objects"  # the shipped pair (models/objects: aircraft, ship, vehicle)
    models_dir: Path = MODELS_DIR
    threads: int = Field(1, ge=1, le=64, description="onnxruntime intra-op threads")
    # Which model file and kernels count: "auto" times int8, int8 with exact kernels and
    # fp32 on this CPU at start-up and keeps the fastest that agrees with fp32
    # (onboard/kernel_choice.py); a named one is used as is.
    precision: Literal["auto", "int8", "int8-exact", "fp32"] = "auto"
    # A scene without a GSD: estimate it from the pixels (onboard/scale_estimate.py), else
    # count at the counter's own GSD. Either way the answer warns.
    estimate_gsd: bool = False
    # Intake limits
    max_upload_bytes: int = Field(512 * 1024 * 1024, ge=1024)
    max_pixels: int = Field(30_000 * 30_000, ge=1)
    # An interlaced PNG or progressive JPEG is decoded whole (a GeoTIFF is read window by
    # window, other PNGs and JPEGs strip by strip): 100 Mpx is 300 MB of RGB, and the memory
    # limit may lower this further (whole_decode_pixels).
    max_decoded_pixels: int = Field(10_000 * 10_000, ge=1)
    queue_size: int = Field(16, ge=1, description="scenes accepted but not yet processed")
    # Memory: the limit the service runs under (the compose file's mem_limit); the caches
    # below and the largest image decoded whole are sized from it unless set.
    memory_limit_bytes: int = Field(1 << 30, ge=64 << 20)
    gdal_cache_bytes: int | None = Field(None, ge=1 << 20, description="GDAL block cache")
    revisit_cache_bytes: int | None = Field(None, ge=0, description="revisit mosaics")
    # Scratch disk (under data_dir) for a scene's tiles' counter inputs, kept from the first
    # pass over the scene so counting does not read and resize them again (0: read again).
    # A 20k x 20k scene at 0.5 m needs 1.3 GB; tiles beyond this are read again.
    tile_store_bytes: int = Field(2 << 30, ge=0)
    # Budgets, scene-relative as in the simulator
    budget_fraction: float = Field(0.10, ge=0.0, le=10.0)
    energy_fraction: float = Field(1.0, ge=0.0, le=10.0)
    # The pipeline (shared/pipeline/config.py): a configuration file as an experiment writes
    # it (``targetfuse experiment``: pipeline.json beside its summary), deployed as is; the
    # policy and confidence band below, when given, take precedence over the file's.
    pipeline_file: Path | None = None
    policy: str = "value"
    conf_p: float = Field(0.0, ge=0.0, le=1.0)
    conf_q: float = Field(0.9, ge=0.0, le=1.0)
    # Exploration (shared/pipeline/exploration.py): this share of each scene's downlink bytes
    # goes to tiles drawn at random among those accepted onboard, flagged on the wire, so the
    # ground sees an unbiased sample of the onboard counter's errors (what a recalibration is
    # fit on). 0: off; at most 0.2; 0.02-0.05 recommended (docs/PIPELINE.md, "Exploration").
    exploration_share: float = Field(0.0, ge=0.0, le=MAX_SHARE, allow_inf_nan=False)
    # The quicklook (shared/pipeline/quicklook.py): a browse image of each scene, long side
    # quicklook_px (0: off; shrunk down to 64 px to fit), sent with the summary within the
    # scene's byte budget; left out when even the smallest would take more than
    # quicklook_max_budget_share of that budget.
    quicklook_px: int = Field(256, ge=0, le=2048)
    quicklook_quality: int = Field(70, ge=10, le=95)
    quicklook_max_budget_share: float = Field(0.25, ge=0.0, le=1.0)
    # The link
    link_rate_bytes_s: float = Field(1_000_000.0, gt=0)
    link_burst_bytes: float | None = Field(None, gt=0)
    contact_period_s: float | None = Field(None, gt=0)
    contact_duration_s: float | None = Field(None, gt=0)
    contact_windows: str | None = Field(
        None, description='explicit schedule as JSON: [[start, end], ...] in epoch seconds')
    # Or a contact plan computed from orbits (``targetfuse plan-contacts``): this
    # satellite's windows, each with its station and rate (the periodic schedule and
    # explicit windows above stay the other options). The satellite may be left out of a
    # plan of one; the shift moves every window (e.g. to replay a plan from now).
    contact_plan_file: Path | None = None
    contact_plan_satellite: str | None = None
    contact_plan_shift_s: float = Field(0.0, allow_inf_nan=False)
    # Or replay the plan from the service's start (a demo of a real plan, as the compose
    # profile's satellites run): the plan's start comes this many seconds after the service
    # starts, and time runs contact_plan_speedup times faster, rates with it, so each pass
    # carries its bytes; played contact_plan_repeat times back to back, so a demo can
    # outlast its plan (shared/orbits/plan.py: replayed).
    contact_plan_replay_lead_s: float | None = Field(None, ge=0.0, le=86_400.0,
                                                     allow_inf_nan=False)
    contact_plan_speedup: float = Field(1.0, ge=1.0, le=10_000.0, allow_inf_nan=False)
    contact_plan_repeat: int = Field(1, ge=1, le=10_000)
    # Where each station of the plan listens, as JSON {"station": "host:port", ...}; a
    # window with a station not named here goes to ground_target.
    station_targets: str | None = None
    link_deadline_s: float = Field(30.0, gt=0)
    # The uplink (onboard/bundles.py): update bundles signed by the ground (calibration,
    # error model, thresholds, a new counter), verified with the ground's Ed25519 public key
    # (its uplink-signing.pub; None: no uplink, the shipped files stay in force), pulled
    # inside contact windows at most uplink_bytes_per_window a window (an always-open link:
    # an hour; 0: no uplink), asked for every uplink_poll_s while a window is open.
    uplink_public_key_file: Path | None = None
    uplink_bytes_per_window: int = Field(1 << 20, ge=0)
    uplink_poll_s: float = Field(60.0, gt=0, le=86_400, allow_inf_nan=False)
    # How far ahead the throttle looks: a scene is planned against the bytes of the current
    # (or next) window and of every window opening within this many seconds, less what is
    # queued. 0: the next window alone (a scene's tiles go down in the first pass after it).
    plan_horizon_s: float = Field(0.0, ge=0.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _tls(self) -> OnboardSettings:
        check_pair(self.tls_cert_file, self.tls_key_file, "onboard")
        if not self.link_tls and (self.ground_tls_ca_file or self.tls_cert_file):
            raise ValueError("onboard: link_tls=false (plaintext) with TLS files named: "
                             "drop one")
        if self.tls_cert_file is not None and self.ground_tls_ca_file is None:
            raise ValueError("onboard: a client certificate needs the ground's CA "
                             "(ground_tls_ca_file)")
        return self

    @model_validator(mode="after")
    def _contact_plan(self) -> OnboardSettings:
        if self.contact_plan_file is None:
            if self.contact_plan_satellite is not None:
                raise ValueError("contact_plan_satellite needs a contact_plan_file")
            if self.contact_plan_replay_lead_s is not None:
                raise ValueError("contact_plan_replay_lead_s needs a contact_plan_file")
            return self
        if self.contact_plan_replay_lead_s is None and (self.contact_plan_speedup != 1.0
                                                        or self.contact_plan_repeat != 1):
            raise ValueError("contact_plan_speedup and contact_plan_repeat replay a plan: "
                             "give contact_plan_replay_lead_s too")
        if self.contact_plan_replay_lead_s is not None and self.contact_plan_shift_s:
            raise ValueError("give contact_plan_shift_s or contact_plan_replay_lead_s, "
                             "not both")
        if self.contact_windows or self.contact_period_s is not None:
            raise ValueError("give one contact schedule: contact_plan_file, contact_windows "
                             "or contact_period_s")
        # The plan itself is read and checked when the service starts
        # (onboard.contact_plan): a bad plan, or one without this satellite, fails there.
        return self

    @field_validator("station_targets")
    @classmethod
    def _station_targets(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            targets = json.loads(v)
            if not (isinstance(targets, dict) and all(
                    isinstance(t, str) and t for t in targets.values())):
                raise ValueError
        except (ValueError, TypeError) as exc:
            raise ValueError('station_targets must be JSON like {"Svalbard": "host:port", '
                             '...}') from exc
        return v

    def station_target_map(self) -> dict[str, str]:
        return json.loads(self.station_targets) if self.station_targets else {}

    @field_validator("memory_limit_bytes", mode="before")
    @classmethod
    def _memory(cls, v):
        # Also as docker's mem_limit writes it ("1g", "512m"), so compose can pass its own.
        if isinstance(v, str):
            m = re.fullmatch(r"\s*(\d+)\s*([kmgKMG]?)[bB]?\s*", v)
            if m is None:
                raise ValueError(f"memory_limit_bytes: a byte count or e.g. 1g, got {v!r}")
            return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]
        return v

    @field_validator("policy")
    @classmethod
    def _policy(cls, v: str) -> str:
        if v not in POLICIES:
            raise ValueError(f"policy must be one of {sorted(POLICIES)}")
        return v

    @field_validator("contact_windows")
    @classmethod
    def _windows(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            pairs = json.loads(v)
            if not all(len(p) == 2 for p in pairs):
                raise ValueError
        except (ValueError, TypeError) as exc:
            raise ValueError("contact_windows must be JSON like [[start, end], ...]") from exc
        return v

    def pipeline_config(self) -> PipelineConfig:
        """The configuration scenes are planned with: the pipeline file's (defaults without
        one), with the policy, confidence band and exploration share given here (or all four
        by default when there is no file)."""
        base = PipelineConfig.load(self.pipeline_file) if self.pipeline_file else \
            PipelineConfig()
        named = ("policy", "conf_p", "conf_q", "exploration_share")
        given = {k: getattr(self, k) for k in named
                 if self.pipeline_file is None or k in self.model_fields_set}
        return replace(base, **given)

    @model_validator(mode="after")
    def _pipeline(self) -> OnboardSettings:
        self.pipeline_config()  # a file that does not load, or a band it breaks, stops here
        return self

    def gdal_cache(self) -> int:
        """GDAL's block cache: 1/16 of the memory limit (GDAL's own default is 5 % of the
        host's RAM, which inside a container is the host's, not the container's)."""
        return self.gdal_cache_bytes or self.memory_limit_bytes // 16

    def revisit_cache(self) -> int:
        """Bytes of earlier scenes' mosaics kept for revisits: 1/8 of the memory limit."""
        return self.memory_limit_bytes // 8 if self.revisit_cache_bytes is None \
            else self.revisit_cache_bytes

    def max_tile_side(self) -> int:
        """The largest tile (source pixels a side) the worker will cut: its RGB and the
        pipeline's working copies of it (8 bytes a pixel) in 1/8 of the memory limit. A GSD
        so fine that the counter's tile would be larger is refused at the intake."""
        import math

        return math.isqrt(self.memory_limit_bytes // 64)

    def whole_decode_pixels(self) -> int:
        """The largest PNG or JPEG decoded whole (interlaced or progressive ones: the others
        are decoded by strips): the decoder's buffers, its BGR output and the RGB copy (up
        to 9 bytes a pixel, a progressive JPEG's coefficients included) in 9/16 of the
        memory limit, the rest for the service; and ``max_decoded_pixels``."""
        return min(self.max_decoded_pixels, self.memory_limit_bytes // 16)
