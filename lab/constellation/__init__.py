"""The constellation: orbits propagated into contact and imaging plans (``orbits``,
``contact_plan``: ``targetfuse plan-contacts``), a constellation's day simulated offline
(``day``: ``targetfuse simulate-day``), the distributed ground segment live on this machine
(``live``: ``targetfuse constellation-live``), and the figures of ``docs/CONSTELLATION.md``
(``report``: ``targetfuse report-constellation``)."""
