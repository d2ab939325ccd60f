"""The environment variables a service's settings class reads, as help text.

Generated from the class itself (a pydantic-settings ``BaseSettings``: its ``model_config``
prefix and its ``model_fields``), so ``--help`` can never list a variable the service does
not read, or miss one. Duck-typed: ``shared`` does not import pydantic."""

from __future__ import annotations

import argparse
import inspect
import re
import textwrap
from enum import Enum
from pathlib import Path
from typing import Any


def _default(field: Any) -> str:
    value = field.default_factory() if field.default_factory is not None else field.default
    if value is None:
        return "unset"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (dict, list, tuple)) and not value:
        return "empty"
    return str(value)


def _comments(settings_cls: Any) -> dict[str, str]:
    """Each field's comment in the class's source: the comment lines just above it (a
    comment above several fields is given to the first) and its own trailing comment."""
    try:
        source = inspect.getsource(settings_cls).splitlines()
    except (OSError, TypeError):
        return {}
    found, above = {}, []
    for line in source[1:]:
        text = line.strip()
        if text.startswith("#"):
            above.append(text.lstrip("# "))
            continue
        m = re.match(r"\s{4}(\w+)\s*:", line)
        if m and not line.startswith(" " * 5):
            trailing = line.split("  # ", 1)[1].strip() if "  # " in line else ""
            found[m.group(1)] = " ".join([*above, trailing]).strip()
        above = []
    return found


def env_help(settings_cls: Any, width: int = 88) -> str:
    """One entry per variable: ``PREFIX_NAME  (default: ...)`` and what it is (the field's
    description, else its comment in the class)."""
    prefix = settings_cls.model_config.get("env_prefix", "")
    comments = _comments(settings_cls)
    lines = ["environment variables (read at start; a bad value is refused, naming it):"]
    for name, field in settings_cls.model_fields.items():
        lines.append(f"  {prefix}{name}".upper() + f"  (default: {_default(field)})")
        text = field.description or comments.get(name, "")
        if text:
            lines.extend(textwrap.wrap(text, width, initial_indent="      ",
                                       subsequent_indent="      "))
    return "\n".join(lines)


def service_parser(prog: str, description: str, settings_cls: Any) -> argparse.ArgumentParser:
    """A service's command line: no options of its own beyond ``--help``, which lists its
    environment variables."""
    return argparse.ArgumentParser(prog=prog, description=description,
                                   epilog=env_help(settings_cls),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
