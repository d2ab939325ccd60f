"""Files only their owner can read (private keys): written whole under a temporary name and
renamed into place, so a crash never leaves half a key, and never readable by others, not
even for a moment (the file is created 0600, not chmod-ed after)."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    """A new file only its owner can read (an old one replaced, never left half-written)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
