"""Finding noisy pairs: the per-pair measurement, scoring, embedding shards and the detectors."""
