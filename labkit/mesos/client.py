"""A scheduler's side of the v1 HTTP API, on the standard library only (frameworks start fast).

``SchedulerClient(url).subscribe(framework_info)`` opens the event stream; a reader thread puts
each RecordIO event on ``events`` (a queue; None when the stream ends). ``call(...)`` sends a Call
with the framework id and the ``Mesos-Stream-Id`` header filled in.
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
import urllib.parse
from typing import Any

from labkit.mesos import protocol as p


class CallRefused(Exception):
    """The master answered a call with an error status; the text is the master's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


class SchedulerClient:
    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 5050
        self.framework_id: str | None = None
        self.stream_id: str | None = None
        self.heartbeat_interval: float | None = None
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stream: http.client.HTTPConnection | None = None
        self._calls = http.client.HTTPConnection(self.host, self.port, timeout=30)
        self._lock = threading.Lock()

    def subscribe(self, framework_info: dict[str, Any]) -> dict[str, Any]:
        """SUBSCRIBE and wait for SUBSCRIBED (returned); later events arrive on ``events``."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=None)
        body = {"type": "SUBSCRIBE", "subscribe": {"framework_info": framework_info}}
        if "id" in framework_info:
            body["framework_id"] = framework_info["id"]
        conn.request("POST", p.SCHEDULER_PATH, json.dumps(body),
                     {"Content-Type": p.CONTENT_TYPE, "Accept": p.CONTENT_TYPE})
        resp = conn.getresponse()
        if resp.status != 200:
            raise CallRefused(resp.status, resp.read().decode(errors="replace"))
        self._stream = conn
        self.stream_id = resp.getheader(p.STREAM_HEADER)
        first = p.read_record(resp)  # type: ignore[arg-type]
        if not first or first.get("type") != "SUBSCRIBED":
            raise CallRefused(500, f"expected SUBSCRIBED first, got {first}")
        self.framework_id = first["subscribed"]["framework_id"]["value"]
        self.heartbeat_interval = first["subscribed"].get("heartbeat_interval_seconds")
        threading.Thread(target=self._read, args=(resp,), name="mesos-events", daemon=True).start()
        return first

    def _read(self, resp: http.client.HTTPResponse) -> None:
        try:
            while True:
                event = p.read_record(resp)  # type: ignore[arg-type]
                if event is None:
                    break
                self.events.put(event)
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass  # AttributeError: close() took the stream away mid-read (http.client's way of saying so)
        self.events.put(None)

    def call(self, kind: str, body: dict[str, Any] | None = None) -> int:
        """Send one Call (``kind`` as scheduler.proto names it, ``body`` its message); the status."""
        msg: dict[str, Any] = {"type": kind, "framework_id": {"value": self.framework_id}}
        if body is not None:
            msg[kind.lower()] = body
        data = json.dumps(msg)
        headers = {"Content-Type": p.CONTENT_TYPE, p.STREAM_HEADER: self.stream_id or ""}
        with self._lock:
            for attempt in (0, 1):  # the kept-alive connection may have been closed by the server
                try:
                    self._calls.request("POST", p.SCHEDULER_PATH, data, headers)
                    resp = self._calls.getresponse()
                    text = resp.read().decode(errors="replace")
                    break
                except (http.client.HTTPException, OSError):
                    self._calls.close()
                    self._calls = http.client.HTTPConnection(self.host, self.port, timeout=30)
                    if attempt:
                        raise
        if resp.status >= 300:
            raise CallRefused(resp.status, text)
        return resp.status

    # the calls a scheduler makes most, spelled as scheduler.proto has them
    def accept(self, offer_ids: list[str], task_infos: list[dict[str, Any]], refuse_seconds: float | None = None) -> int:
        body: dict[str, Any] = {"offer_ids": [{"value": o} for o in offer_ids],
                                "operations": [{"type": "LAUNCH", "launch": {"task_infos": task_infos}}]}
        if refuse_seconds is not None:
            body["filters"] = {"refuse_seconds": refuse_seconds}
        return self.call("ACCEPT", body)

    def decline(self, offer_ids: list[str], refuse_seconds: float | None = None) -> int:
        body: dict[str, Any] = {"offer_ids": [{"value": o} for o in offer_ids]}
        if refuse_seconds is not None:
            body["filters"] = {"refuse_seconds": refuse_seconds}
        return self.call("DECLINE", body)

    def acknowledge(self, status: dict[str, Any]) -> int | None:
        """ACKNOWLEDGE an UPDATE's status (those without a uuid need none)."""
        if "uuid" not in status:
            return None
        return self.call("ACKNOWLEDGE", {"agent_id": status["agent_id"], "task_id": status["task_id"],
                                         "uuid": status["uuid"]})

    def close(self) -> None:
        """Drop the stream (the master treats it as a disconnection) and the call connection."""
        if self._stream is not None:
            sock = self._stream.sock
            if sock is not None:
                try:
                    sock.shutdown(2)
                except OSError:
                    pass
            self._stream.close()
        self._calls.close()


def task_info(task_id: str, agent_id: str, command: str, cpus: float, mem: float, name: str = "",
              image: str | None = None, health_command: str | None = None,
              health: dict[str, float] | None = None) -> dict[str, Any]:
    """A TaskInfo with a shell CommandInfo (and a MESOS container image, a COMMAND health check)."""
    ti: dict[str, Any] = {"name": name or task_id, "task_id": {"value": task_id}, "agent_id": {"value": agent_id},
                          "resources": [p.scalar("cpus", cpus), p.scalar("mem", mem)],
                          "command": {"shell": True, "value": command}}
    if image:
        ti["container"] = {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": image}}}}
    if health_command:
        ti["health_check"] = {"type": "COMMAND", "command": {"value": health_command}, **(health or {})}
    return ti


def offered(offer: dict[str, Any]) -> dict[str, float]:
    return p.from_resources(offer.get("resources", []))
