"""Procedural synthetic Earth-observation scenes for training and testing object counters.

``generate_scene`` renders one annotated scene (airport aprons, harbours, towns, fields) with
aircraft, ships and vehicles, their shadows, clouds and sensor degradations; ``generate_revisits``
renders several captures of one ground footprint; ``revisit_real`` makes revisits of a real
annotated image. Everything is deterministic in the seed.
"""

from __future__ import annotations

from lab.synth.revisit import revisit_real
from lab.synth.scene import SceneConfig, generate_revisits, generate_scene

__all__ = ["SceneConfig", "generate_revisits", "generate_scene", "revisit_real"]
