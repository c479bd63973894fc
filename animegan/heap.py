"""Handing the heap's free pages back to the system in the middle of a photo (glibc only; elsewhere a no-op).

glibc keeps the pages of freed tensors mapped. Between the stages of one photo that matters: the contrast
equalisation's temporaries (about 100 MB at 1024 px) stay mapped while OpenVINO allocates its own buffers for the
scene generator, and the guided upsampling's while the face pass runs, so the peak is the sum rather than the
larger of the two. ``malloc_trim`` costs a few milliseconds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from typing import Any


@cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    return libc if hasattr(libc, "malloc_trim") else None


def give_back_free_heap() -> None:
    """Return every free page of glibc's heaps to the system (``malloc_trim(0)``)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
