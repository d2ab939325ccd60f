"""The ground side: receives downlinked tiles, counts them with the deep PyTorch counter and
aggregates per-scene totals."""
