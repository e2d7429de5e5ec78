"""The synthetic toy world: scenes, rendering, edits, the oracle and data sets."""
