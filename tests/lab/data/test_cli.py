import json

import numpy as np
import pytest

from lab.data.formats import read_dataset
from shared.imageio import read_rgb
from targetfuse.cli import main


@pytest.fixture
def yolo_dir(tmp_path, make_image):
    root = tmp_path / "ds"
    (root / "labels").mkdir(parents=True)
    (root / "classes.names").write_text("car\ntruck\n")
    for k in range(4):
        make_image(root / "images" / f"f{k}.png", 120, 80, seed=k)
        (root / "labels" / f"f{k}.txt").write_text("0 0.2 0.2 0.1 0.1\n" * (k + 1)
                                                   + "1 0.8 0.8 0.1 0.1\n")
    return root


def test_stats_prints_and_writes_json(yolo_dir, tmp_path, capsys):
    out = tmp_path / "s.json"
    assert main(["data", "stats", "--data", str(yolo_dir), "--format", "yolo",
                 "--tile-size", "64", "--json", str(out)]) == 0
    assert "4 images, 14 objects" in capsys.readouterr().out
    stats = json.loads(out.read_text())
    assert stats["per_class"] == {"car": 10, "truck": 4}
    assert stats["tiles"] == {"tile_size": 64, "tiles": 16, "empty": 8, "max_per_tile": 4,
                              "objects": 14}


def test_split_json(yolo_dir, tmp_path):
    out = tmp_path / "split.json"
    assert main(["data", "split", "--data", str(yolo_dir), "--format", "yolo", "--fractions",
                 "train=0.5,test=0.5", "--json", str(out)]) == 0
    parts = json.loads(out.read_text())
    assert sorted(parts) == ["test", "train"]
    # f0..f3 are numbered frames of one sequence: they stay together.
    assert sorted(len(v) for v in parts.values()) == [0, 4]


def test_split_balanced_by_class_reports_each_class(yolo_dir, tmp_path, capsys):
    out = tmp_path / "split.json"
    assert main(["data", "split", "--data", str(yolo_dir), "--format", "yolo",
                 "--balance-classes", "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all("aircraft 0" in x and "ship 0" in x and "vehicle" in x for x in lines)
    assert sum(len(v) for v in json.loads(out.read_text()).values()) == 4
    assert main(["data", "split", "--data", str(yolo_dir), "--format", "yolo",
                 "--balance-classes", "--source", "atlantis"]) == 2
    assert "no labelling record" in capsys.readouterr().err


def test_show_writes_png(yolo_dir, tmp_path):
    out = tmp_path / "show.png"
    assert main(["data", "show", "--data", str(yolo_dir), "--format", "yolo", "--image",
                 "f2.png", "--tile-size", "40", "--out", str(out)]) == 0
    assert read_rgb(out).shape == (80, 120, 3)


def test_broken_input_exits_2_with_file_and_line(yolo_dir, capsys):
    (yolo_dir / "labels" / "f1.txt").write_text("0 0.2 0.2 0.1 0.1\n0 0.2 oops 0.1 0.1\n")
    assert main(["data", "stats", "--data", str(yolo_dir), "--format", "yolo"]) == 2
    err = capsys.readouterr().err
    assert "f1.txt:2:" in err and "not a number" in err and "Traceback" not in err


def test_missing_folder_and_bad_option(tmp_path, capsys):
    assert main(["data", "stats", "--data", str(tmp_path / "nope"), "--format", "dota"]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "stats", "--data", str(tmp_path), "--format", "coco"])


@pytest.mark.parametrize("fmt", ["airbus-csv", "yolo-obb", "voc"])
def test_synth_writes_a_readable_dataset(tmp_path, fmt):
    out = tmp_path / fmt
    assert main(["data", "synth", "--out", str(out), "--format", fmt, "--scenes", "2",
                 "--width", "256", "--height", "256", "--seed", "3"]) == 0
    ds = read_dataset(out, fmt)
    assert len(ds) == 2 and ds.total() > 0
    assert set(ds.class_counts()) <= {"aircraft", "ship", "vehicle"}


def test_synth_revisits_share_a_sequence(tmp_path):
    out = tmp_path / "rv"
    assert main(["data", "synth", "--out", str(out), "--format", "dota", "--scenes", "1",
                 "--width", "256", "--height", "256", "--revisits", "3"]) == 0
    ds = read_dataset(out, "dota")
    assert len(ds) == 3 and len({i.meta.sequence for i in ds.images}) == 1
    assert all(i.meta.footprint is not None for i in ds.images)


def test_revisit_real_images(yolo_dir, tmp_path):
    out = tmp_path / "rev"
    assert main(["data", "revisit", "--data", str(yolo_dir), "--format", "yolo", "--out",
                 str(out), "--n", "2", "--images", "2", "--max-shift", "4"]) == 0
    ds = read_dataset(out, "yolo")
    assert len(ds) == 4
    originals = read_dataset(yolo_dir, "yolo").images[:2]
    assert sorted(i.count() for i in ds.images) == sorted([o.count() for o in originals] * 2)
    assert not np.array_equal(ds.images[0].load_pixels(), ds.images[1].load_pixels())
