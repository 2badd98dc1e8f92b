"""Where an in-process AstrBot keeps its data. AstrBot reads ASTRBOT_ROOT when it is first
imported, so call use_temp_root() before anything imports astrbot (tests/support/harness.py does)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def use_temp_root(prefix: str) -> Path:
    """Point AstrBot at a fresh temporary directory, metrics off; return the directory."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["ASTRBOT_ROOT"] = str(root)
    os.environ["ASTRBOT_DISABLE_METRICS"] = "1"
    return root
