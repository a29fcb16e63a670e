"""Keep the C heap from returning request-sized buffers to the kernel after every chunk.

Every chunk of a body in or out is a fresh `bytes` of 64 KiB..1 MiB (uvloop's reads, httptools'
body slices, file reads).  glibc's defaults give such a buffer back to the kernel as soon as it
is freed — it was `mmap`ed, or it sat at the top of the heap, past the 128 KiB trim threshold —
so the next chunk takes fresh pages, and every page faults on first touch.  Measured on 256 MB
uploads to a fresh server: more CPU went to those faults and to `brk`/`munmap` than to moving
bytes — a bare uvicorn app that drops the body used 4x the CPU of the same app with these
settings, and supalite's uploads went from about 1.6 to 0.9 ms of CPU per MB.  (glibc raises
its thresholds by itself once it frees a mapped block of a MiB or so — after a few 1 MiB
downloads — so this mostly makes a server fast from its first request, whatever it serves.)

Raising the two thresholds keeps up to `TRIM` bytes of freed memory at the top of each heap
for reuse.  Memory stays flat (bounded by the chunks in flight plus `TRIM` per heap, whatever
the object size); it just does not shrink below that between requests.  glibc only (Linux);
elsewhere nothing is changed.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger("supalite.storage")

_M_TRIM_THRESHOLD = -1  # glibc's mallopt() parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
# Blocks below this come from the heap (reused), larger ones are mapped and unmapped each
# time: above every chunk size (1 MiB at most), below the S3 backend's 8 MiB parts, which are
# mapped as glibc's defaults would (keeping two of them per upload would not be flat).
MMAP_THRESHOLD = 4 * 1024 * 1024
# Free memory at the top of a heap is kept up to this much before it is given back: room for
# the chunks of several transfers at once.  (Measured: 1 MiB gains nothing, 4 MiB all of it.)
TRIM = 8 * 1024 * 1024


def keep_buffers() -> bool:
    """Set glibc's thresholds for this process (again is harmless); whether they were set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library the interpreter itself runs on
    except OSError:
        return False
    # glibc only: musl has a mallopt() that does nothing, and no gnu_get_libc_version().
    if not (hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version")):
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM)
    )
    if not done:
        log.debug("storage: mallopt refused the heap thresholds; glibc's defaults stay")
    return done
