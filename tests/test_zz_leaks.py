"""Runs last: after the whole suite, nothing labkit made may remain on the host.

No mounts, cgroups, network namespaces, veths or bridges, no labkit processes and no Docker
containers labelled labkit, no folder of a killed notebook cluster. Each test cleans up after
itself; this proves it did.
"""

from __future__ import annotations

import sys

import pytest

from labkit.runtime import gc


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="leaks are Linux objects")
def test_nothing_labkit_made_is_left_on_the_host():
    leaks = gc.find_leaks(("mounts", "cgroups", "netns", "links", "processes", "docker", "containers", "clusters"))
    assert leaks == [], "left behind:\n" + "\n".join(str(x) for x in leaks) + "\n(remove with: labkit gc)"
