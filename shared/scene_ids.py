"""What either service accepts as a scene id: a name safe in file paths, URLs and HTML.

One rule for both ends of the link: the onboard intake checks the ids users send, the ground
checks the ids that arrive over gRPC (anyone who reaches the port can send one), so an id
the dashboard shows can never carry markup.
"""

from __future__ import annotations

import re

# fullmatch, not match with ``$``: ``$`` also matches before a trailing newline.
PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
RULE = "1-128 letters, digits, '_', '.', '-', starting with a letter or digit"


def valid_scene_id(value: object) -> bool:
    return isinstance(value, str) and PATTERN.fullmatch(value) is not None
