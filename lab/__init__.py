"""The research tooling: everything neither service runs in flight.

Data (``data``: real-dev datasets, splits, label cleaning, drawing, the ``data`` commands and
the tour), synthetic scenes (``synth``), the counters' networks (``models``), training
(``training``), shipping them under ``models/`` (``shipping``), the offline simulator
(``simulator``), evaluation and pipeline calibration (``evaluation``), the experiments, their
plots and reports (``experiments``), the report of the benchmarks' figures (``performance``),
the services run live on this machine and the demo (``services``), the fault-injection suite
(``reliability``) and the constellation (``constellation``). It imports the services and
``shared``; they never import it.
"""
