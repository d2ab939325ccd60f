"""From a training run to the model files under ``models/``: export, int8 quantisation and
the confidence fit (``ship``: ``targetfuse ship``; ``quantize``), and the per-class count
scale fit on validation afterwards (``count_scale``: ``targetfuse fit-count-scale``)."""
