"""What the services cost, as ``docs/PERFORMANCE.md`` shows it: the tables rendered from the
result files the benchmarks (``benchmarks/``) write under ``docs/performance/``
(``report``: ``targetfuse report-performance``)."""
