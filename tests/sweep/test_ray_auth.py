"""Joining a Ray cluster that uses token authentication with the wrong token: the error names the
token and where to put it (Ray only says "Failed to connect" and logs the cause natively)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from esper.sweep.errors import SweepError

HEAD = """
import sys, ray
ray.init(num_cpus=0, include_dashboard=False, logging_level="ERROR")
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()  # until the test closes it
ray.shutdown()
"""


def test_a_wrong_token_is_named_not_taken_for_an_unreachable_cluster(monkeypatch):
    pytest.importorskip("ray", reason="the Ray executor needs Ray: pip install 'esper[ray]'")
    from esper.sweep.ray_executor import RayExecutor

    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "the-cluster-token"}
    head = subprocess.Popen([sys.executable, "-c", HEAD], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        address = head.stdout.readline().strip()
        assert address, "the Ray head did not start"
        monkeypatch.setenv("RAY_AUTH_MODE", "token")
        monkeypatch.setenv("RAY_AUTH_TOKEN", "another-token")
        started = time.monotonic()
        with pytest.raises(SweepError) as refused:
            RayExecutor(address, 1)
        message = str(refused.value)
        assert message.startswith(f"cannot join the Ray cluster at {address!r}: the cluster uses "
                                  "token authentication")
        assert "RAY_AUTH_TOKEN" in message and "ray get-auth-token" in message
        assert time.monotonic() - started < 120
    finally:
        head.stdin.close()
        head.wait(timeout=60)
