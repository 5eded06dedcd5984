"""Data in: images, ingest, noise injection, curators' decisions and the synthetic demo data."""
