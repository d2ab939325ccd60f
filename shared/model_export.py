"""What a container image carries of the model pairs it serves.

``runtime_files`` reads a role's card (``shared.model_bundle``) and lists every file that
role's service reads: the card, its weights, each other file the card names except the
training checkpoint, and the pair's shared files (``PAIR_FILES``) when present; ``export``
copies them, which is what the Dockerfiles run (``python -m shared.model_export``).
"""

from __future__ import annotations

from pathlib import Path

from shared.model_bundle import PAIR_FILES, card_path, shipped_pairs
from shared.model_card import load_card

# Files a card names that no service loads (the training checkpoint): not shipped in images.
NOT_RUN = ("torch_weights",)


def runtime_files(name: str, role: str, models_dir: Path | None = None) -> list[Path]:
    """Every file the ``role`` service reads of pair ``name``, read from its card: the card,
    its weights, each other file the card names (fp32 ONNX, confidence model, ...) and the
    pair's shared files when present. What an image must carry for that pair; raises
    FileNotFoundError when the card or a file it names is missing."""
    card_file = card_path(name, role, models_dir)
    card = load_card(card_file)
    folder = card_file.parent
    files = [card_file, folder / card.weights]
    for key, value in card.extra.items():
        if key not in NOT_RUN and isinstance(value, str) and not key.endswith("_sha256") \
                and (folder / value).is_file():
            files.append(folder / value)
    files += [folder / f for f in PAIR_FILES if (folder / f).is_file()]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"{f}, named by {card_file}, is missing")
    return list(dict.fromkeys(files))


def export(role: str, src: Path, dest: Path, names: list[str]) -> list[Path]:
    """Copy the runtime files of pairs ``names`` (``all``: every pair with a ``role`` card)
    from ``src`` to ``dest`` (a container image's models folder)."""
    import shutil

    if names == ["all"]:
        names = shipped_pairs(role, src)
    if not names:
        raise ValueError(f"no {role} model pair to export from {src}")
    copied = []
    for name in names:
        for f in runtime_files(name, role, src):
            target = dest / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
            copied.append(target)
    return copied


def main(argv: list[str] | None = None) -> int:
    """``python -m shared.model_export ROLE SRC DEST PAIR...``: what the Dockerfiles run to
    put the pairs an image serves into it (``all``: every shipped pair)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m shared.model_export",
                                description="copy the files a service reads of model pairs")
    p.add_argument("role", choices=["onboard", "ground"])
    p.add_argument("src", type=Path)
    p.add_argument("dest", type=Path)
    p.add_argument("pairs", nargs="+", help="pair names, or all")
    args = p.parse_args(argv)
    for f in export(args.role, args.src, args.dest, args.pairs):
        print(f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
