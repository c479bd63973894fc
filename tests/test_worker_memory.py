"""A worker gives its freed heap back between jobs, so an idle worker does not keep a job's peak."""

from __future__ import annotations

import json

from bench.memory import run_python

# Frees 200 MB of small malloc blocks while one block above them pins the heap's top (as a worker's live objects
# do), then reports private memory before and after ``give_back_free_memory``.
SCRIPT = """
import ctypes, ctypes.util, json
from bot.worker import give_back_free_memory
def private_mb():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
blocks = []
for _ in range(200 * 16):
    block = libc.malloc(64 * 1024)
    ctypes.memset(block, 1, 64 * 1024)
    blocks.append(block)
pin = libc.malloc(64 * 1024)
for block in blocks:
    libc.free(ctypes.c_void_p(block))
before = private_mb()
give_back_free_memory()
print(json.dumps({"before": before, "after": private_mb()}))
"""


def test_free_heap_pages_are_given_back() -> None:
    report = json.loads(run_python(SCRIPT).stdout)
    assert report["before"] - report["after"] > 150, report
