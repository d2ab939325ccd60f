"""The satellite side: scene intake, tiling, deduplication, the ONNX counter, selection,
throttling and the downlink. Never imports torch (a test enforces it)."""
