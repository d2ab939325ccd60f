"""The wire contract's Python side: generated messages (``link_pb2``, ``link_pb2_grpc``, made
by ``proto/generate.py`` from ``proto/targetfuse/v1/link.proto``; never edit them) and the
plain functions both services use to build and check them (``chunks``)."""
