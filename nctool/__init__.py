"""nctool: find and handle noisy correspondence in image-text datasets."""

__version__ = "0.1.0"
