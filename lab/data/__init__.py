"""Real and generated datasets as the tooling uses them: the annotation formats' readers and
writers (``formats``), the real-dev sources, splits by group and look-alike place,
duplicate-label merging, drawing, the ``targetfuse data`` commands and the tour.
"""
