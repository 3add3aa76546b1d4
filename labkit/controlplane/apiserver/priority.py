"""PriorityClasses and the Priority admission step.

A PriorityClass maps a name to an integer; a pod names one in ``spec.priorityClassName`` and the
apiserver, not the client, turns the name into ``spec.priority`` (and ``spec.preemptionPolicy``)
as the pod is created. A pod that names no class gets the ``globalDefault`` class's value, or 0.
A pod naming a class that does not exist is refused. The scheduler only ever reads the integer.
"""

from __future__ import annotations

from typing import Any

from .codec import decode
from .crdschema import go_value
from .errors import StatusError, cause

PREFIX = "/registry/priorityclasses/"
HIGHEST_USER_PRIORITY = 1_000_000_000
SYSTEM_CLASSES = {  # name -> value, as every Kubernetes cluster has them
    "system-cluster-critical": 2_000_000_000,
    "system-node-critical": 2_000_001_000,
}
POLICIES = ("PreemptLowerPriority", "Never")


def builtin(name: str) -> dict:
    """One of the two system classes, as kube-apiserver creates them at start."""
    what = "cluster" if name == "system-cluster-critical" else "node"
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
            "value": SYSTEM_CLASSES[name], "globalDefault": False,
            "description": f"Used for system critical pods that must not be moved from their current {what}."}


def ensure_system_classes(registry: Any, rt: Any) -> None:
    """Create the two system classes at start if the store lacks them (``registry``: a Registry)."""
    for name in SYSTEM_CLASSES:
        if registry.store.get(rt.key(None, name)) is None:
            try:
                registry.create(rt, None, builtin(name))
            except StatusError:
                pass


def default_priorityclass(pc: dict) -> None:
    pc.setdefault("preemptionPolicy", "PreemptLowerPriority")
    pc.setdefault("globalDefault", False)


def validate_priorityclass(pc: dict, old: dict | None) -> list[dict]:
    out = []
    name = (pc.get("metadata") or {}).get("name", "")
    value = pc.get("value")
    if value is None:
        out.append(cause("value", "Required value", "FieldValueRequired"))
    elif isinstance(value, bool) or not isinstance(value, int):
        out.append(cause("value", f"Invalid value: {go_value(value)}: must be an integer"))
    elif name in SYSTEM_CLASSES:
        if value != SYSTEM_CLASSES[name]:
            out.append(cause("metadata.name", f'Invalid value: "{name}": name and value do not match '
                                              "with the system priority class"))
    elif name.startswith("system-"):
        out.append(cause("metadata.name", f'Invalid value: "{name}": priority class names with \'system-\' '
                                          "prefix are reserved for system use only"))
    elif value > HIGHEST_USER_PRIORITY:
        out.append(cause("value", f"Invalid value: {value}: maximum allowed value of a user defined priority "
                                  f"is {HIGHEST_USER_PRIORITY}"))
    if pc.get("preemptionPolicy") not in POLICIES:
        out.append(cause("preemptionPolicy", f"Unsupported value: {go_value(pc.get('preemptionPolicy'))}: "
                                             'supported values: "Never", "PreemptLowerPriority"',
                         "FieldValueNotSupported"))
    if old is not None:
        if old.get("value") != value:
            out.append(cause("value", f"Invalid value: {go_value(value)}: field is immutable"))
        if old.get("preemptionPolicy") != pc.get("preemptionPolicy"):
            out.append(cause("preemptionPolicy", f"Invalid value: {go_value(pc.get('preemptionPolicy'))}: "
                                                 "field is immutable"))
    return out


def _forbidden(resource: str, name: str, why: str) -> StatusError:
    return StatusError(403, "Forbidden", f'{resource} "{name}" is forbidden: {why}',
                       {"name": name, "kind": resource})


class PriorityClasses:
    """The classes admission reads, cached like kube-apiserver's lister: read again from the store
    only after a class changed (a write through this server, or one the watch cache saw)."""

    def __init__(self, store: Any):
        self.store = store
        self._known: dict[str, dict] | None = None

    def changed(self) -> None:
        self._known = None

    def watch(self, events: list) -> None:
        """Hub listener: a class written anywhere makes the next admission read them again."""
        if any(ev.key.startswith(PREFIX) for ev in events):
            self._known = None

    def all(self) -> dict[str, dict]:
        known = self._known
        if known is None:
            kvs, _ = self.store.list(PREFIX)
            known = self._known = {kv.key[len(PREFIX):]: decode(kv.value) for kv in kvs}
        return known


def admit_priorityclass(classes: PriorityClasses, pc: dict, old: dict | None) -> None:
    """At most one class may be the global default."""
    classes.changed()
    if not pc.get("globalDefault"):
        return
    name = pc["metadata"]["name"]
    for other_name, other in classes.all().items():
        if other.get("globalDefault") and other_name != name:
            raise _forbidden("priorityclasses.scheduling.k8s.io", name,
                             f"PriorityClass {other_name} is already marked as default. Only one default can exist")


def admit_pod(classes: PriorityClasses, pod: dict) -> None:
    """Resolve the pod's priority from its class (or the global default), or refuse the pod."""
    spec = pod.setdefault("spec", {})
    name = pod["metadata"].get("name", "")
    wanted = spec.get("priorityClassName")
    policy = None
    if wanted:
        pc = classes.all().get(wanted) if wanted not in SYSTEM_CLASSES else builtin(wanted)
        if pc is None:
            raise _forbidden("pods", name, f"no PriorityClass with name {wanted} was found")
        value, policy = pc.get("value", 0), pc.get("preemptionPolicy")
    else:
        default = next((pc for pc in classes.all().values() if pc.get("globalDefault")), None)
        value = default.get("value", 0) if default else 0
        if default:
            spec["priorityClassName"] = default["metadata"]["name"]
            policy = default.get("preemptionPolicy")
    given = spec.get("priority")
    if given is not None and given != value:
        raise _forbidden("pods", name, f"the integer value of priority ({given}) must not be provided in pod spec; "
                                       f"priority admission controller computed {value} from the given "
                                       "PriorityClass name")
    spec["priority"] = value
    if policy:
        spec["preemptionPolicy"] = policy


def keep_resolved(pod: dict, old: dict) -> None:
    """An update that leaves out what admission resolved keeps it (a pod's priority never changes)."""
    spec, old_spec = pod.setdefault("spec", {}), old.get("spec") or {}
    for key in ("priority", "priorityClassName", "preemptionPolicy"):
        if key in old_spec and key not in spec:
            spec[key] = old_spec[key]
