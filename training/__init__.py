"""Trainers for edit models: ``python -m unpaired_edit.training METHOD --config FILE.yaml``."""
