"""Who is sending: the link's authentication, per call.

Every ``Downlink`` and ``Uplink`` call carries ``authorization: Bearer <key>`` in its
metadata; a server interceptor refuses (UNAUTHENTICATED) a call without one of the ground's
link keys before any servicer code runs. The key's name in the keys file is the sender: it
owns the scenes it creates (``ground.link_server``), so nobody else can write into, or read
the holdings of, a scene another sender started, and it is offered the uplink bundles
addressed to it (``ground.uplink``). Health checks stay open for probes. Without keys (``auth`` off)
every sender is the anonymous ``""``, or, under mutual TLS, its certificate's common name.
"""

from __future__ import annotations

import grpc

from shared.api_keys import bearer, matching

DOWNLINK_PREFIX = "/targetfuse.v1.Downlink/"
UPLINK_PREFIX = "/targetfuse.v1.Uplink/"  # the same link, the other way (ground.uplink)


def _given(metadata) -> bytes | None:
    for key, value in metadata or ():
        if key == "authorization":
            return bearer(value.encode() if isinstance(value, str) else value)
    return None


class LinkAuth(grpc.ServerInterceptor):
    def __init__(self, keys: dict[bytes, str]):
        from shared.limits import SENDER

        odd = sorted(n for n in keys.values() if SENDER.fullmatch(n) is None)
        if odd:  # a sender's name qualifies its scenes' keys (ground.store.scene_key)
            raise ValueError(f"link key names must be 1-64 letters, digits, '_.@-': {odd[0]!r}")
        self.keys = keys

        def refuse(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED,
                          "a link key is required (metadata authorization: Bearer <key>)")

        # Both shapes of the Downlink methods: Send streams, Committed is unary.
        self._refuse_stream = grpc.stream_stream_rpc_method_handler(refuse)
        self._refuse_unary = grpc.unary_unary_rpc_method_handler(refuse)
        self._refuse_fetch = grpc.unary_stream_rpc_method_handler(refuse)  # Uplink.Fetch

    def intercept_service(self, continuation, details):
        method = details.method
        if not self.keys or not method.startswith((DOWNLINK_PREFIX, UPLINK_PREFIX)) or \
                matching(self.keys, _given(details.invocation_metadata)) is not None:
            return continuation(details)
        if method.endswith("/Send"):
            return self._refuse_stream
        return self._refuse_fetch if method.endswith("/Fetch") else self._refuse_unary

    def sender(self, context: grpc.ServicerContext) -> str:
        """The authenticated sender of a call (checked already by the interceptor)."""
        if self.keys:
            return matching(self.keys, _given(context.invocation_metadata())) or ""
        names = (context.auth_context() or {}).get("x509_common_name") or []
        return names[0].decode() if names else ""
