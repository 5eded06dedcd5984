"""`python -m nctool ...` (and `torchrun --nproc_per_node N -m nctool train ...` for DDP)."""

from nctool.cli import main

main()
