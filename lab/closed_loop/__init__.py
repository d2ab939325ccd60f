"""The closed loop's tooling: what the ground fits from what came down and uplinks again."""
