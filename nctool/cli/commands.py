"""Imports every command module so each registers its command on the shared app.

The import order is the order `nctool --help` lists the commands: the pipeline's order.
"""
# ruff: noqa: F401
from nctool.cli import synth
from nctool.cli import ingest
from nctool.cli import inject
from nctool.cli import train
from nctool.cli import embed
from nctool.cli import score
from nctool.cli import filter
from nctool.cli import review
from nctool.cli import bench
