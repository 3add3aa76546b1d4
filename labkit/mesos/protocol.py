"""The wire of Mesos' v1 scheduler API in JSON: RecordIO framing, TaskState, resources.

Field names follow mesos/v1/mesos.proto and mesos/v1/scheduler/scheduler.proto as their JSON
mapping spells them (``framework_id.value``, ``offers[].agent_id.value`` ...), so a client written
for a real Mesos master reads these messages unchanged.
"""

from __future__ import annotations

import enum
import json
from typing import Any, BinaryIO

CONTENT_TYPE = "application/json"
SCHEDULER_PATH = "/api/v1/scheduler"
STREAM_HEADER = "Mesos-Stream-Id"
DEFAULT_REFUSE_SECONDS = 5.0  # Filters.refuse_seconds' default in mesos.proto


class TaskState(enum.IntEnum):
    """mesos.v1.TaskState, with the numbers mesos.proto gives them (STARTING is 0, STAGING 6)."""

    TASK_STAGING = 6
    TASK_STARTING = 0
    TASK_RUNNING = 1
    TASK_KILLING = 8
    TASK_FINISHED = 2
    TASK_FAILED = 3
    TASK_KILLED = 4
    TASK_ERROR = 7
    TASK_LOST = 5
    TASK_DROPPED = 9
    TASK_UNREACHABLE = 10
    TASK_GONE = 11
    TASK_GONE_BY_OPERATOR = 12
    TASK_UNKNOWN = 13

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({TaskState.TASK_FINISHED, TaskState.TASK_FAILED, TaskState.TASK_KILLED, TaskState.TASK_ERROR,
                      TaskState.TASK_LOST, TaskState.TASK_DROPPED, TaskState.TASK_GONE,
                      TaskState.TASK_GONE_BY_OPERATOR})

CALL_TYPES = ("SUBSCRIBE", "TEARDOWN", "ACCEPT", "DECLINE", "REVIVE", "SUPPRESS", "KILL", "ACKNOWLEDGE",
              "RECONCILE")
# in scheduler.proto too, but not served here (501 Not Implemented)
OTHER_CALL_TYPES = ("ACCEPT_INVERSE_OFFERS", "DECLINE_INVERSE_OFFERS", "SHUTDOWN", "ACKNOWLEDGE_OPERATION_STATUS",
                    "RECONCILE_OPERATIONS", "MESSAGE", "REQUEST", "UPDATE_FRAMEWORK", "UNKNOWN")


def record(event: dict[str, Any]) -> bytes:
    """One RecordIO record: the JSON's length in decimal, a newline, the JSON."""
    data = json.dumps(event, separators=(",", ":")).encode()
    return str(len(data)).encode() + b"\n" + data


def read_record(stream: BinaryIO) -> dict[str, Any] | None:
    """The next event from a RecordIO stream, or None at its end."""
    line = stream.readline()
    if not line:
        return None
    size = int(line.strip())
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return json.loads(data)


def scalar(name: str, value: float) -> dict[str, Any]:
    """A SCALAR Resource as mesos.proto's JSON spells it."""
    return {"name": name, "type": "SCALAR", "scalar": {"value": round(float(value), 3)}, "role": "*"}


def to_resources(amounts: dict[str, float]) -> list[dict[str, Any]]:
    return [scalar(k, v) for k, v in amounts.items() if v > 0]


def from_resources(resources: list[dict[str, Any]]) -> dict[str, float]:
    """Scalar resources summed by name; other types are refused with a message saying so."""
    out: dict[str, float] = {}
    for r in resources or []:
        kind = r.get("type", "SCALAR")
        if kind != "SCALAR":
            raise ValueError(f"resource {r.get('name')!r} is of type {kind}: this master offers SCALAR resources only")
        name = r.get("name")
        if not name:
            raise ValueError("a resource without a 'name'")
        value = float((r.get("scalar") or {}).get("value", 0))
        if value < 0:
            raise ValueError(f"resource {name!r} has a negative value {value}")
        out[name] = round(out.get(name, 0.0) + value, 3)
    return out


def value_of(obj: Any) -> str | None:
    """``{"value": "x"}`` → ``"x"`` (the shape of every *ID message)."""
    if isinstance(obj, dict):
        v = obj.get("value")
        return str(v) if v is not None else None
    return None
