"""``--out`` is a folder for every ``targetfuse`` command that writes results (the files it
writes there have fixed names); a single file named elsewhere is ``--json FILE`` (``eval``,
``data stats``, ``calibrate-sources``). The one exception, ``data show --out FILE.png``,
draws one picture and says so in its help."""

from __future__ import annotations

from pathlib import Path

FILE_SUFFIXES = {".json", ".png", ".csv", ".txt", ".yaml", ".yml"}


def out_folder(value: str | Path, writes: str) -> Path:
    """``value`` as the folder a command writes ``writes`` into, made if needed; a clear
    ValueError when it names a file instead (``--out x.json`` of an older release)."""
    path = Path(value)
    if path.suffix.lower() in FILE_SUFFIXES or path.is_file():
        raise ValueError(f"--out is a folder (this command writes {writes} into it); "
                         f"{str(value)!r} names a file: give its folder, "
                         f"--out {path.parent}")
    path.mkdir(parents=True, exist_ok=True)
    return path
