"""The pipeline's sweeps over budgets, thresholds, tile sizes, energy, treatments and
deduplication (``targetfuse experiment``): workloads, sweeps, summaries and plots.
"""
