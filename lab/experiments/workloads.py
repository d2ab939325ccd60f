"""The deduplication sweep's workloads: each scene with simulated revisits (``revisit_real``),
synthetic airports revisited under clear sky and under 15 % cloud, and the plain scenes with
no revisit at all.
"""

from __future__ import annotations

from dataclasses import replace

from lab.evaluation.evaluate import truth_objects
from lab.experiments import sweeps as ex


def dedup_workloads(images, truths, classes, onboard, ground, pipe, args) -> list[dict]:
    from lab.evaluation.options import counter_classes
    from lab.synth import SceneConfig, generate_revisits
    from lab.synth.revisit import revisit_real
    from shared.annotations import Footprint

    counted = counter_classes(onboard, classes)  # what the other sweeps count too
    rows = []
    seqs, seq_truths = [], []
    for k, img in enumerate(images):
        gsd = img.meta.gsd_m or 1.0
        if img.meta.footprint is None:  # a local frame, as revisit_real assumes
            img = replace(img, meta=replace(img.meta, footprint=Footprint(
                (0.0, gsd, 0.0, 0.0, 0.0, -gsd))))
        revs = revisit_real(img, args.revisits, seed=args.seed + k)
        seqs.append([img, *revs])
        seq_truths.append([len(truth_objects(x, classes, args.dedupe_iou)[0])
                           for x in [img, *revs]])
    rows.append(ex.dedup_rows("real revisits", seqs, seq_truths, onboard, ground, pipe,
                              classes=counted))
    gsd = images[0].meta.gsd_m or 0.5
    for sky, cover in (("clear", 0.0), ("15% cloud", 0.15)):
        synth, synth_truths = [], []
        for k in range(3):
            caps = generate_revisits(SceneConfig(width=2560, height=2560, gsd_m=gsd,
                                                 classes=("aircraft",), layout="airport",
                                                 cloud_cover=cover),
                                     seed=args.seed + 100 + k, n=args.revisits + 1,
                                     change_fraction=0.1)
            synth.append(caps)
            synth_truths.append([len(c.objects) for c in caps])
        rows.append(ex.dedup_rows(f"synthetic revisits, {sky}", synth, synth_truths, onboard,
                                  ground, pipe, classes=counter_classes(onboard, {"aircraft"})))
    rows.append(ex.dedup_rows("plain scenes", [[img] for img in images],
                              [[t] for t in truths], onboard, ground, pipe, classes=counted))
    return rows
