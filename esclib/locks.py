"""Inter-process locks, so that two ``esc run`` processes in one checkout never collide.

Used for a results-store run (the second process waits, then reuses the finished result), a synthetic world being
generated (the second waits for it), and an executed chapter copy (a second ``esc run`` of the same chapter is
refused, naming the process that holds it). The locks are advisory ``flock`` locks on small files that record
who holds them; a lock is released when its holder exits, however it exits.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class LockedError(RuntimeError):
    """Another process holds the lock and the caller chose not to wait."""


def holder(path: str | Path) -> str:
    """Who holds (or last held) the lock at ``path``, in words."""
    try:
        info = json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        return "another process"
    return (f"process {info.get('pid', '?')} on {info.get('host', '?')} ({info.get('command', '?')}, since "
            f"{info.get('since', '?')})")


@contextmanager
def file_lock(path: str | Path, *, what: str, wait: bool = True, poll: float = 0.5) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created with its folders) while the block runs.

    If another process holds it: with ``wait`` block until it is free (saying once on stderr what it waits for),
    else raise :class:`LockedError` naming ``what`` and the holder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    raise LockedError(f"{what} is locked by {holder(path)}; wait for it to finish, or stop it "
                                      f"(lock file {path})") from None
                if not told:
                    print(f"[esclib] waiting for {what}: locked by {holder(path)}", file=sys.stderr)
                    told = True
                time.sleep(poll)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "command": " ".join(sys.argv[:3]) or "python",
                                     "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
