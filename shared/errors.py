"""Error texts a service may show to whoever sent the input."""

from __future__ import annotations

import re

# Two or more path components: a file or build path, not "1/2" or "km/h".
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][^/\\\s:'\"]+){2,}[/\\]?")


def public(exc: BaseException) -> str:
    """An error's text without file-system paths (the server's layout is nobody's business:
    readers name the temporary file, OpenCV its build tree)."""
    return _PATH.sub("<path>", str(exc))
