"""The experiments and their reports: the pipeline's sweeps over budgets, thresholds, tile
sizes, energy, treatments and deduplication (``targetfuse experiment``: workloads, sweeps,
summaries and plots), the tables of ``docs/EXPERIMENTS.md`` (``report``) and the README's
headline (``readme``) rendered from their results, and the link experiment over kernel
shaping (``link``: ``targetfuse link-experiment``).
"""
