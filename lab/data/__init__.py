"""Real and generated datasets as the tooling uses them: the real-dev sources, splits by group
and look-alike place, duplicate-label merging, drawing, and the ``targetfuse data``
commands.
"""
