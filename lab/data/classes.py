"""The counters' three classes and how each dataset's labels map onto them.

The map is data (``class_map.json`` beside this module): each dataset's class names ->
aircraft / ship / vehicle, the names deliberately left out, and per real-dev source which
classes its labels cover exhaustively. A class a source does not label exhaustively is
*unlabelled* there, not absent: training masks its loss and evaluation leaves it out, so
the unboxed cars of an airport scene never teach a counter to ignore cars. ``"present"``
means per image: the classes the image has at least one label of (NWPU VHR-10 picked each
image for the classes it labels). A source may also exclude imagery the counters cannot
use (``exclude``: values of image metadata fields, e.g. false-colour infrared sources), and
name labels that make a class unlabelled in the image holding them (``unlabelled_with``:
NWPU VHR-10 boxes a marina as one "harbor" and leaves its boats unboxed, so a harbour image's
ship count is not known; counted against its one boxed ship, a ground that counted 100 boats
in the marina scored 8x over).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from shared.annotations import AnnotatedImage

CLASS_MAP = Path(__file__).with_name("class_map.json")


@dataclass(frozen=True)
class SourceLabels:
    labelled: tuple[str, ...] | str  # classes, or "present"
    exclude: dict[str, tuple[str, ...]]
    # class -> label names whose presence in an image leaves that class unlabelled there
    unlabelled_with: dict[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ClassMap:
    classes: tuple[str, ...]
    names: dict[str, str]  # dataset class name -> class
    ignored: frozenset[str]
    sources: dict[str, SourceLabels]

    def canonical(self, name: str) -> str | None:
        """The class a dataset's class name counts as; None for a name left out. A name
        the map does not know is an error: a new dataset's names are decided, not guessed."""
        if name in self.names:
            return self.names[name]
        if name in self.ignored:
            return None
        raise ValueError(f"class name {name!r} is neither mapped nor ignored in {CLASS_MAP}")

    def names_of(self, cls: str) -> set[str]:
        """Every dataset class name that counts as ``cls``."""
        return {n for n, c in self.names.items() if c == cls}

    def counts(self, image: AnnotatedImage) -> dict[str, int]:
        """Objects per class in an image (every class, zero where there are none)."""
        found = Counter(self.canonical(o.class_name) for o in image.objects)
        return {c: found.get(c, 0) for c in self.classes}

    def usable(self, source: str, image: AnnotatedImage) -> bool:
        """False for imagery the source's record excludes."""
        for meta_field, values in self._source(source).exclude.items():
            if getattr(image.meta, meta_field, None) in values:
                return False
        return True

    def labelled(self, source: str, image: AnnotatedImage) -> frozenset[str]:
        """The classes whose count in this image is known (the others are unlabelled)."""
        record = self._source(source)
        if record.labelled == "present":
            known = {c for c, n in self.counts(image).items() if n > 0}
        else:
            known = set(record.labelled)
        names = {o.class_name for o in image.objects}
        return frozenset(c for c in known if not names & record.unlabelled_with.get(c, set()))

    def _source(self, source: str) -> SourceLabels:
        try:
            return self.sources[source]
        except KeyError:
            raise ValueError(f"no labelling record for source {source!r} in {CLASS_MAP}; "
                             f"known: {', '.join(sorted(self.sources))}") from None


def load_class_map(path: str | Path = CLASS_MAP) -> ClassMap:
    """Read and check a class map; a malformed one is a ValueError naming the file."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
        classes = tuple(raw["classes"])
        names: dict[str, str] = {}
        for cls, members in raw["names"].items():
            if cls not in classes:
                raise ValueError(f"names maps onto {cls!r}, which is not one of {classes}")
            for name in members:
                if name in names:
                    raise ValueError(f"class name {name!r} is mapped twice")
                names[name] = cls
        ignored = frozenset(raw.get("ignored", []))
        if ignored & set(names):
            raise ValueError(f"names both mapped and ignored: {sorted(ignored & set(names))}")
        sources = {}
        for source, rec in raw["sources"].items():
            labelled = rec["labelled"]
            if labelled != "present":
                unknown = set(labelled) - set(classes)
                if unknown:
                    raise ValueError(f"source {source!r} labels unknown classes {unknown}")
                labelled = tuple(labelled)
            exclude = {k: tuple(v) for k, v in rec.get("exclude", {}).items()}
            unlabelled_with = {c: frozenset(v) for c, v in rec.get("unlabelled_with", {}).items()}
            if set(unlabelled_with) - set(classes):
                raise ValueError(f"source {source!r}: unlabelled_with names unknown classes "
                                 f"{set(unlabelled_with) - set(classes)}")
            sources[source] = SourceLabels(labelled, exclude, unlabelled_with)
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: not a valid class map: {exc!r}") from None
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return ClassMap(classes, names, ignored, sources)
