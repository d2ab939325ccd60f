"""Where the project lives on disk (the checkout root), for files found relative to it."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
