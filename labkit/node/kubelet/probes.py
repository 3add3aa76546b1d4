"""Liveness and readiness probes, run the way the kubelet runs them: on a timer, per container.

``exec`` probes run the command in the container (``ExecSync``). ``httpGet`` and ``tcpSocket``
probes are carried out from inside the container too (busybox ``wget`` / ``nc`` against
127.0.0.1, the pod's own network namespace), so they work whatever the host can route to.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class ProbeState:
    failures: int = 0
    successes: int = 0
    last_run: float = 0.0
    ok: bool | None = None


def probe_command(probe: dict) -> list[str] | None:
    if "exec" in probe:
        return list((probe["exec"] or {}).get("command") or [])
    if "httpGet" in probe:
        h = probe["httpGet"] or {}
        # no -T: Debian's busybox 1.35 wget crashes (SIGSEGV) with it; the ExecSync timeout bounds the probe
        return ["wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{h.get('port', 80)}{h.get('path', '/')}"]
    if "tcpSocket" in probe:
        # connect and close at once: busybox's small nc has no -z, but it exits 0 once connected when its
        # stdin is empty, and 1 when the connection is refused
        port = int((probe["tcpSocket"] or {}).get("port", 0))
        return ["sh", "-c", f"nc -w {int(probe.get('timeoutSeconds', 1))} 127.0.0.1 {port} </dev/null"]
    return None


def due(probe: dict, st: ProbeState, started_at: float | None, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    if started_at and now - started_at < float(probe.get("initialDelaySeconds", 0)):
        return False
    return now - st.last_run >= float(probe.get("periodSeconds", 10))


def record(probe: dict, st: ProbeState, success: bool) -> bool | None:
    """Update the counters; return the new verdict once a threshold is crossed (else None)."""
    st.last_run = time.time()
    if success:
        st.successes += 1
        st.failures = 0
        if st.successes >= int(probe.get("successThreshold", 1)) and st.ok is not True:
            st.ok = True
            return True
    else:
        st.failures += 1
        st.successes = 0
        if st.failures >= int(probe.get("failureThreshold", 3)) and st.ok is not False:
            st.ok = False
            return False
    return None
