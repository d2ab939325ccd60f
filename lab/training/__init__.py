"""Training the counters on CPU: crops and targets (``data``, ``density``), the loop with
checkpoints and resume (``loop``), and ``targetfuse train`` (``cli``).
"""
