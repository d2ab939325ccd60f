"""The collaboration pipeline, one module per technique of the TargetFuse design.

Data flows one way: a scene is cut into tiles (``tiling``), near-duplicate tiles are found
(``dedup``), the onboard counter counts what the energy budget (``energy``) allows, each tile
is banded by its confidence (``selection``), the downlink budget is spent on the tiles worth
it (``throttling``), and the ground adds its counts of the downlinked tiles to the onboard
ones (``aggregation``). ``scene`` runs the onboard half for one scene; ``simulator`` runs both
halves over a dataset with no network, through the same functions the services call.
"""
