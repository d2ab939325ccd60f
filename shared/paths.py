"""Where the project lives on disk (the checkout root), for files found relative to it."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def project_path(path: str | Path) -> Path:
    """A path as records keep it (relative to the project when inside it), made usable."""
    p = Path(path)
    return p if p.is_absolute() else PROJECT_ROOT / p
