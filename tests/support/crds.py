"""A CustomResourceDefinition for the CRD tests: a namespaced ``CronTab`` with a schema worth testing."""

from __future__ import annotations


def crontab_crd(group: str, plural: str = "crontabs", kind: str = "CronTab", short: str = "ct",
                status: bool = True) -> dict:
    """The CronTab CRD of Kubernetes' own tutorial, with bounds, an enum, a default and a pattern."""
    version = {
        "name": "v1", "served": True, "storage": True,
        "schema": {"openAPIV3Schema": {
            "type": "object",
            "properties": {
                "spec": {"type": "object", "required": ["image"], "properties": {
                    "cronSpec": {"type": "string", "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"},
                    "image": {"type": "string"},
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                    "mode": {"type": "string", "enum": ["fast", "slow"]},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                }},
                "status": {"type": "object", "properties": {"ready": {"type": "boolean"},
                                                            "runs": {"type": "integer"}}},
            },
        }},
    }
    if status:
        version["subresources"] = {"status": {}}
    version["additionalPrinterColumns"] = [
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Ready", "type": "boolean", "jsonPath": ".status.ready"},
        {"name": "Image", "type": "string", "jsonPath": ".spec.image", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced", "versions": [version],
                     "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "shortNames": [short],
                               "categories": ["all"]}}}


def crontab(group: str, name: str, **spec: object) -> dict:
    return {"apiVersion": f"{group}/v1", "kind": "CronTab", "metadata": {"name": name},
            "spec": {"cronSpec": "*/5 * * * *", "image": "cron:1", **spec}}
