"""The counters' architectures as training builds them: the onboard (shallow) networks and
the registry of every architecture (``nets``), and the ImageNet weights a trunk may start
from (``pretrained``). The services never import this: they load what ``lab.shipping``
exported."""
