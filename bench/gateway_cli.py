"""The operators' CLI, run against the database of the gateway under test (for the scenarios' setup hooks).

The gateway's own environment names its database (and token key, if configured), so reading it from ``/proc`` makes
the CLI write where the running gateway looks, whatever ``--gateway-env`` said.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def gateway_environment(pid: int) -> dict[str, str]:
    """This process's environment with the gateway's ``SESSIONGATE_*`` variables instead of its own."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    gateway = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONGATE_")}
    return env | {k: v for k, v in gateway.items() if k.startswith("SESSIONGATE_")}


def sessiongate(pid: int, *args: str, stdin: str | None = None) -> None:
    """Run ``sessiongate <args>`` for the gateway ``pid``; "already exists" counts as done (setups run twice).

    Raises:
        RuntimeError: the command failed for another reason.
    """
    argv = [sys.executable, "-m", "sessiongate", *args]
    done = subprocess.run(argv, input=stdin, env=gateway_environment(pid), capture_output=True, text=True, check=False)
    if done.returncode != 0 and "already exists" not in done.stderr:
        raise RuntimeError(f"sessiongate {' '.join(args[:2])} failed: {done.stderr.strip()}")
