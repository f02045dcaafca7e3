"""Trainable systems of the field, rebuilt on the host's data and metric (DWE+: `dwe_plus`)."""
