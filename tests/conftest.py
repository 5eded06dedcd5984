import logging
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def root_logger_level():
    """Restore the root logger's level after each test: `nctool.cli.main`, run in-process, quiets it
    for the rest of the process, and a later test must not depend on which tests ran before it."""
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)
