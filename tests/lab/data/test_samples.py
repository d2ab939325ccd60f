"""The shipped sample scenes: what their record says matches the files, every one says its
licence, and (with the real-dev folder) they are rebuilt exactly from the test splits."""

import json

from lab.data.samples import SAMPLES_DIR, SPECS, load_samples, make_samples


def test_samples_match_their_record_and_carry_licences():
    samples = load_samples()
    assert {s.cls for s in samples} == {"aircraft", "ship", "vehicle"}
    raw = {e["name"]: e for e in json.loads((SAMPLES_DIR / "samples.json").read_text())
           ["samples"]}
    for s in samples:
        e = raw[s.name]
        pixels = s.load_pixels()
        assert pixels.shape[:2] == (e["height"], e["width"])
        assert s.truth == len(e["centres"]) > 0
        assert all(0 <= x < e["width"] and 0 <= y < e["height"] for x, y in e["centres"])
        assert s.licence and s.attribution and e["split"] == "test"
        assert s.licence.split(" (")[0] in (SAMPLES_DIR / "README.md").read_text()
    assert sum(p.stat().st_size for p in SAMPLES_DIR.iterdir()) < 1_000_000


def test_samples_come_from_the_test_splits(real_dev, tmp_path):
    from lab.training.sources import split_ids

    for spec in SPECS:
        assert spec.image_id in split_ids(spec.source)["test"]
    rebuilt = make_samples(tmp_path, real_dev)
    shipped = json.loads((SAMPLES_DIR / "samples.json").read_text())["samples"]
    assert [(e["name"], e["truth"], e["crop"]) for e in rebuilt] == \
        [(e["name"], e["truth"], e["crop"]) for e in shipped]
    for new, old in zip(rebuilt, shipped, strict=True):
        assert new["centres"] == old["centres"]
