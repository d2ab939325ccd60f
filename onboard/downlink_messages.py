"""A planned scene as the link's messages: its header, its summary, its downlinked tiles.

The header names the scene's grid, GSD (and whether it was estimated), footprint, capture
time, the model pair and the input size tiles were resized to, the policy and the classes;
the summary every tile's decision, counts and confidence, with the quicklook when there is
one. Both are checked against the limits the ground applies (``shared.limits``): a number out
of range fails the scene here, with the reason, not at the ground. Each tile chosen for the
downlink follows, resized to the counter's input (``prepared``'s kept input when it is there,
so the scene is not read again), JPEG at the quality the plan chose, in checksummed chunks
(an exploration tile's flagged, in its chunks as in the summary).

Messages are made as they are consumed: the outbox inserts each as it comes, so a large
scene's downlink is never in memory whole.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from onboard.counter import OnboardCounter
from onboard.scene_job import SceneJob
from shared import limits
from shared.pipeline.codec import downlink_pixels, encode_tile
from shared.pipeline.decisions import DOWNLINK
from shared.pipeline.scene import ScenePlan
from shared.pipeline.tiles import PreparedTiles
from shared.wire import link_pb2
from shared.wire.chunks import tile_chunks
from shared.wire.convert import scene_header, scene_summary


def scene_messages(plan: ScenePlan, job: SceneJob, pixels, counter: OnboardCounter,
                   policy: str, *, classes: list[str] | None = None,
                   prepared: PreparedTiles | None = None,
                   quicklook: tuple[bytes, int, int] | None = None, bundle_version: int = 0
                   ) -> Iterator[link_pb2.DownlinkMessage]:
    """The scene's outbox messages, made as they are consumed; a downlinked tile's pixels
    come from ``prepared``'s kept inputs where they are there (not read from the scene
    again). ``policy``: the one that planned it; ``classes``: default the counter's;
    ``bundle_version``: the uplinked bundle in force when it was planned (0: the shipped
    files), so the ground knows which calibration chose each tile."""
    card = counter.card
    summary = scene_summary(plan)
    if quicklook:  # the scene's browse image rides with its summary
        summary.quicklook, summary.quicklook_width, summary.quicklook_height = quicklook
    gsd = job.gsd_m
    header = scene_header(plan, gsd, job.footprint, capture_time=job.capture_time,
                          onboard_model=f"{card.name}/{card.architecture}@{card.sha256[:12]}",
                          ground_model=f"{card.name}/deep", input_size=counter.input_size,
                          policy=policy, classes=classes or counter.classes,
                          gsd_estimated=job.gsd_source == "estimated",
                          bundle_version=bundle_version)
    # What goes down meets the rule the ground checks it by (shared.limits): a number out
    # of range fails the scene here, with the reason, not at the ground.
    limits.check_header(header)
    limits.check_summary(summary, header)
    yield from [link_pb2.DownlinkMessage(header=header),
                link_pb2.DownlinkMessage(summary=summary)]
    sent_gsd = (gsd or 0.0) * plan.tile_size / counter.input_size
    for i in np.flatnonzero(plan.decisions.action == DOWNLINK):
        t = plan.grid.tile(int(i))
        q = int(plan.decisions.quality[i])
        sent = prepared.sent_pixels(int(i), counter.input_size) if prepared is not None else \
            downlink_pixels(plan.grid.crop(pixels, int(i)), plan.tile_size, counter.input_size)
        data = encode_tile(sent, q)
        yield from (link_pb2.DownlinkMessage(chunk=c) for c in tile_chunks(
            plan.scene_id, int(i), t.row, t.col, data, q, sent_gsd_m=sent_gsd,
            onboard_count=float(plan.onboard[i]), confidence=float(plan.confidence[i]),
            exploration=plan.decisions.is_explored(int(i))))
