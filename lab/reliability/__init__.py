"""Reliability: the fault-injection suite and the bad inputs, against the embedded deployment
(``faults``, ``bad_inputs``) and the ground segment (``segment_faults``,
``segment_bad_inputs``); ``cli`` is ``targetfuse faults``, ``report`` renders their results
into ``docs/RELIABILITY.md`` (``targetfuse report-reliability``)."""
