"""Reports: plots, the noise-rate benchmark and the demo."""
