"""fit-class-scales keeps, per class, the input scale with the lower validation error."""

from lab.shipping.class_scale import choose


def test_each_class_takes_its_better_scale_over_groups_with_enough_objects():
    measured = {
        1.0: {"a/aircraft": {"relative_cmae": 0.15, "objects": 200},
              "b/aircraft": {"relative_cmae": 0.60, "objects": 500},
              "a/ship": {"relative_cmae": 0.60, "objects": 300},
              "c/ship": {"relative_cmae": 0.10, "objects": 4}},
        0.5: {"a/aircraft": {"relative_cmae": 0.07, "objects": 200},
              "b/aircraft": {"relative_cmae": 0.43, "objects": 500},
              "a/ship": {"relative_cmae": 0.70, "objects": 300},
              "c/ship": {"relative_cmae": 9.0, "objects": 4}}}
    chosen = choose(measured, min_objects=10)
    assert chosen["aircraft"]["scale"] == 0.5
    assert chosen["aircraft"]["by_scale"] == {"1": 0.375, "0.5": 0.25}
    assert chosen["ship"]["scale"] == 1.0 and chosen["ship"]["groups"] == 1


def test_a_tie_keeps_the_scale_it_was_trained_at():
    g = {"a/vehicle": {"relative_cmae": 0.3, "objects": 50}}
    assert choose({1.0: g, 0.5: g}, 10)["vehicle"]["scale"] == 1.0
