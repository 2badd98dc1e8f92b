"""What counts as Chinese in a text: for the tests that hold English replies free of it."""

from __future__ import annotations

import re

# Han (with extension A and compatibility ideographs), CJK punctuation (、。「」), and the
# full-width forms Chinese text uses (，：（）).
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


def cjk_in(*texts: str) -> list[str]:
    """The texts that hold a CJK character (empty when every one is free of them)."""
    return [t for t in texts if CJK.search(t)]
