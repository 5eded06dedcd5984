"""Imports every command module so each registers its command on the shared app.

The import order is the order `nctool --help` lists the commands: the pipeline's order.
"""
# ruff: noqa: F401
from nctool.cli import bench, embed, filter, ingest, inject, review, score, synth, train
