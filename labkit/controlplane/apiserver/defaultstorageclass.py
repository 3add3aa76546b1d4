"""The DefaultStorageClass admission step: a claim that names no class gets the default one.

kind, minikube and k3s ship a StorageClass annotated ``storageclass.kubernetes.io/is-default-class``
and kube-apiserver's DefaultStorageClass admission plugin writes its name into every new claim
that has no ``storageClassName``, so everyday YAML binds without naming a class. A claim that says
``storageClassName: ""`` asks for no class at all and is left alone, as in Kubernetes.
"""

from __future__ import annotations

from labkit.controlplane.store import Store

from .codec import decode
from .resources import BY_PLURAL

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def default_class(store: Store) -> str | None:
    """The default StorageClass's name; with several defaults, the newest (Kubernetes' rule since 1.26)."""
    kvs, _ = store.list(BY_PLURAL["storageclasses"].key_prefix())
    defaults = []
    for kv in kvs:
        sc = decode(kv.value)
        md = sc.get("metadata") or {}
        if (md.get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true":
            defaults.append((md.get("creationTimestamp", ""), md.get("name", "")))
    return max(defaults)[1] if defaults else None


def admit_claim(store: Store, claim: dict) -> None:
    """Fill in ``spec.storageClassName`` of a new claim that has none, when a default class exists."""
    spec = claim.setdefault("spec", {})
    if isinstance(spec, dict) and spec.get("storageClassName") is None:
        name = default_class(store)
        if name:
            spec["storageClassName"] = name
