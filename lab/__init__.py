"""The research tooling: everything neither service runs in flight.

Data (``data``: real-dev datasets, splits, label cleaning, drawing, the ``data`` commands),
synthetic scenes (``synth``), the onboard architecture and the full registry (``nets``),
training (``training``), shipping (``ship``, ``quantize``), the offline simulator
(``simulator``), evaluation and pipeline calibration (``evaluation``), the experiments and
their plots (``experiments``), the tour (``tour``) and the live demo (``demo``, ``live``).
It imports the services and ``shared``; they never import it.
"""
