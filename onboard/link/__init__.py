"""The onboard end of the downlink: contact windows, the byte-rate limit, the durable outbox
and the gRPC client that drains it."""
