"""``snapshot.storage.k8s.io/v1``: VolumeSnapshotClass, VolumeSnapshot and VolumeSnapshotContent.

In Kubernetes these come as CRDs with the external snapshotter; labkit serves them built in, with
the same shapes and the validation the CRDs' schemas and webhook apply: a snapshot names exactly
one source (a claim to snapshot, or an existing content to import), and that source never changes.
The snapshot controller (:mod:`labkit.controlplane.controllers.volumesnapshot`) does the work.
"""

from __future__ import annotations

from .errors import cause

POLICIES = ("Delete", "Retain")


def _one_source(source: object, names: tuple[str, str], path: str) -> list[dict]:
    if not isinstance(source, dict):
        return [cause(path, "Required value", "FieldValueRequired")]
    given = [n for n in names if source.get(n)]
    if len(given) != 1:
        return [cause(path, f"Invalid value: exactly one of {names[0]} or {names[1]} must be set")]
    return []


def validate_volumesnapshotclass(obj: dict, old: dict | None) -> list[dict]:
    """A driver and a deletionPolicy of Delete or Retain (both required, as in the CRD)."""
    out = []
    if not obj.get("driver"):
        out.append(cause("driver", "Required value", "FieldValueRequired"))
    if obj.get("deletionPolicy") not in POLICIES:
        out.append(cause("deletionPolicy", f'Unsupported value: "{obj.get("deletionPolicy")}": supported values: '
                                           '"Delete", "Retain"', "FieldValueNotSupported"))
    return out


def validate_volumesnapshot(obj: dict, old: dict | None) -> list[dict]:
    """One source, claim or content; immutable once set."""
    spec = obj.get("spec") or {}
    out = _one_source(spec.get("source"), ("persistentVolumeClaimName", "volumeSnapshotContentName"), "spec.source")
    if old is not None and (old.get("spec") or {}).get("source") != spec.get("source"):
        out.append(cause("spec.source", "Invalid value: spec.source is immutable"))
    return out


def validate_volumesnapshotcontent(obj: dict, old: dict | None) -> list[dict]:
    """A driver, a deletionPolicy, a snapshot it belongs to, and one source: a volume or a snapshot handle."""
    spec = obj.get("spec") or {}
    out = _one_source(spec.get("source"), ("volumeHandle", "snapshotHandle"), "spec.source")
    if not spec.get("driver"):
        out.append(cause("spec.driver", "Required value", "FieldValueRequired"))
    if spec.get("deletionPolicy") not in POLICIES:
        out.append(cause("spec.deletionPolicy", "Unsupported value: supported values: \"Delete\", \"Retain\"",
                         "FieldValueNotSupported"))
    ref = spec.get("volumeSnapshotRef")
    if not isinstance(ref, dict) or not ref.get("name") or not ref.get("namespace"):
        out.append(cause("spec.volumeSnapshotRef", "Required value: name and namespace", "FieldValueRequired"))
    return out


def _bool(v: object) -> str:
    return "" if v is None else str(bool(v)).lower()  # not reported yet: blank, as kubectl prints a CRD's column


def volumesnapshot_row(vs: dict, now: float, age) -> list:
    """The columns the external snapshotter's CRD prints."""
    spec, status = vs.get("spec") or {}, vs.get("status") or {}
    source = spec.get("source") or {}
    return [vs["metadata"]["name"], _bool(status.get("readyToUse")), source.get("persistentVolumeClaimName", ""),
            source.get("volumeSnapshotContentName", ""), status.get("restoreSize", ""),
            spec.get("volumeSnapshotClassName", ""), status.get("boundVolumeSnapshotContentName", ""),
            status.get("creationTime", ""), age(vs, now)]


def volumesnapshotcontent_row(c: dict, now: float, age) -> list:
    spec, status = c.get("spec") or {}, c.get("status") or {}
    ref = spec.get("volumeSnapshotRef") or {}
    return [c["metadata"]["name"], _bool(status.get("readyToUse")), status.get("restoreSize", ""),
            spec.get("deletionPolicy", ""), spec.get("driver", ""), spec.get("volumeSnapshotClassName", ""),
            ref.get("name", ""), ref.get("namespace", ""), age(c, now)]


def volumesnapshotclass_row(c: dict, now: float, age) -> list:
    return [c["metadata"]["name"], c.get("driver", ""), c.get("deletionPolicy", ""), age(c, now)]
