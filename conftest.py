"""Test tiers for the whole zoo.

`e2e` marks a test that runs a program end to end: a script or entry point in a subprocess,
or a training run long enough to matter. `pytest -m "not e2e"` is the fast loop; CI runs both.
A test that starts a subprocess without the mark fails, so the fast tier stays fast and honest.
"""
import subprocess

import pytest

_popen_init = subprocess.Popen.__init__


@pytest.fixture(autouse=True)
def _subprocess_needs_e2e(request, monkeypatch):
    if request.node.get_closest_marker("e2e") is not None:
        return

    def refuse(self, args, *a, **kw):
        raise AssertionError(f"{request.node.nodeid} starts a subprocess ({args!r:.80}): mark it "
                             "@pytest.mark.e2e (or put pytestmark = pytest.mark.e2e in its module)")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
