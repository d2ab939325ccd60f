"""The ground counter's networks: the registry (``registry``), shared layers (``layers``)
and the deep architecture (``deep``)."""
