"""The README's test line stays quick: only tests marked ``slow`` (or ``clients``) may start a process."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_a_test_not_marked_slow_that_starts_a_process_fails_naming_itself():
    with pytest.raises(pytest.fail.Exception, match=r"test_suite_speed\.py::.*starts a process .*: mark it slow"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)


@pytest.mark.slow
def test_a_test_marked_slow_may_start_one():
    assert subprocess.run([sys.executable, "-c", "pass"], check=False).returncode == 0
