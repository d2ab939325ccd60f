"""The collaboration pipeline, one module per technique of the TargetFuse design.

Data flows one way: a scene is cut into tiles (``tiling``, Alg. 1; ``tiles``), near-duplicate
tiles are found (``dedup``), the onboard counter counts what the energy budget (``energy``)
allows, each tile is banded by its confidence (``selection``), the downlink budget is spent on
the tiles worth it (``throttling``, Alg. 2, with ``value_policy`` and its ``error_model``, and
the ``baselines``; actions in ``decisions``), what goes down is resized and encoded
(``codec``), and the ground adds its counts of the downlinked tiles to the onboard ones
(``aggregation``). ``scene`` runs the onboard half for one scene (``config``: its settings;
``budgets``: what scene-relative budgets are fractions of). The offline simulator that runs
both halves over a dataset is the tooling's (``lab.simulator``).
"""
