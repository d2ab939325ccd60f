"""Update bundles the ground signs and the satellite verifies before it applies them.

``keys``: the ground's Ed25519 signing key, made once like the link's CA; ``bundle``: the
bundle's manifest, its signature and its contents, built on the ground and opened onboard;
``parity``: the check a new onboard counter passes on the pair's canary tiles;
``transfer``: a bundle's bytes as resumable chunks over the ``Uplink`` RPC (proto/)."""
