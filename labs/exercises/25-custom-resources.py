"""Lab 25's exercises: teach the apiserver a new kind, and let it show, validate and split it.

A CustomResourceDefinition is cluster-wide, so each learner's API group carries their namespace
(``NAMESPACE.labkit.dev``; in the notebook ``default.labkit.dev``): forty students, forty groups.
Verify asks the apiserver itself: the Table kubectl prints, dry-run creates that must be refused
or accepted, a status write through the main endpoint that must be ignored.
"""

from __future__ import annotations

import json
from typing import Any

from labkit.practice import Exercise, Target, Verdict

KIND, PLURAL = "Backup", "backups"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def group(t: Target) -> str:
    return f"{t.namespace}.labkit.dev"


def _crd_name(t: Target) -> str:
    return f"{PLURAL}.{group(t)}"


def _ext(t: Target) -> Any:
    from kubernetes import client

    return client.ApiextensionsV1Api(t.api_client)


def _custom(t: Target) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(t.api_client)


def _established_crd(t: Target) -> tuple[Any, str]:
    """(the CRD, "") when it serves objects, else (None, what is missing)."""
    from kubernetes.client.rest import ApiException

    try:
        crd = _ext(t).read_custom_resource_definition(_crd_name(t))
    except ApiException as err:
        if err.status == 404:
            return None, (f"there is no CustomResourceDefinition {_crd_name(t)!r} yet (kind {KIND}, plural "
                          f"{PLURAL}, group {group(t)}, version v1, namespaced)")
        raise
    conds = {c.type: c.status for c in (crd.status.conditions or [])} if crd.status else {}
    if conds.get("Established") != "True":
        return None, f"{_crd_name(t)} exists but is not Established yet: {conds}"
    if not any(v.name == "v1" and v.served for v in crd.spec.versions):
        return None, f"{_crd_name(t)} must serve version v1"
    return crd, ""


def _backup(t: Target, name: str, **spec: Any) -> dict:
    return {"apiVersion": f"{group(t)}/v1", "kind": KIND, "metadata": {"name": name}, "spec": spec}


def _crd(t: Target, schema_spec: dict, required: list[str] | None = None, status: bool = False) -> dict:
    spec_schema: dict = {"type": "object", "properties": schema_spec}
    if required:
        spec_schema["required"] = required
    props: dict = {"spec": spec_schema}
    version: dict = {"name": "v1", "served": True, "storage": True,
                     "additionalPrinterColumns": [{"name": "Schedule", "type": "string",
                                                   "jsonPath": ".spec.schedule"}]}
    if status:
        props["status"] = {"type": "object", "properties": {"phase": {"type": "string"}}}
        version["subresources"] = {"status": {}}
    version["schema"] = {"openAPIV3Schema": {"type": "object", "properties": props}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": _crd_name(t)},
            "spec": {"group": group(t), "scope": "Namespaced",
                     "names": {"plural": PLURAL, "singular": "backup", "kind": KIND},
                     "versions": [version]}}


def _apply_crd(t: Target, crd: dict) -> None:
    """Create or replace the CRD, then wait until it is Established (as `kubectl wait` would)."""
    import time

    from kubernetes.client.rest import ApiException

    try:
        _ext(t).create_custom_resource_definition(crd)
    except ApiException as err:
        if err.status != 409:
            raise
        old = _ext(t).read_custom_resource_definition(crd["metadata"]["name"])
        crd = {**crd, "metadata": {**crd["metadata"], "resourceVersion": old.metadata.resource_version}}
        _ext(t).replace_custom_resource_definition(crd["metadata"]["name"], crd)
    for _ in range(100):
        if _established_crd(t)[0] is not None:
            return
        time.sleep(0.1)


def _delete_crd(t: Target) -> None:
    from kubernetes.client.rest import ApiException

    try:
        _ext(t).delete_custom_resource_definition(_crd_name(t))
    except ApiException as err:
        if err.status != 404:
            raise


# --- 25.1: a printer column -----------------------------------------------------------------
def _table(t: Target) -> dict:
    """What `kubectl get backups` receives: the apiserver's Table for the list."""
    path = f"/apis/{group(t)}/v1/namespaces/{t.namespace}/{PLURAL}"
    api = t.api_client
    method, url, headers, body, _ = api.param_serialize("GET", path, header_params={"Accept": TABLE},
                                                        auth_settings=["BearerToken"])
    resp = api.call_api(method, url, headers, body)
    resp.read()
    return json.loads(resp.data)


def _verify_printer_column(t: Target) -> Verdict:
    crd, problem = _established_crd(t)
    if crd is None:
        return Verdict.not_yet(problem)
    table = _table(t)
    names = [c["name"] for c in table.get("columnDefinitions", [])]
    if "Schedule" not in names:
        return Verdict.not_yet(f"`kubectl get {PLURAL}` shows the columns {names}: add a printer column named "
                               "Schedule (jsonPath .spec.schedule) to version v1")
    col = names.index("Schedule")
    rows = {(r.get("object") or {}).get("metadata", {}).get("name"): r["cells"] for r in table.get("rows", [])}
    if "nightly" not in rows:
        return Verdict.not_yet(f"the column is there; now create a {KIND} named nightly in {t.namespace!r} "
                               "with spec.schedule \"0 3 * * *\"")
    if rows["nightly"][col] != "0 3 * * *":
        return Verdict.not_yet(f"nightly's Schedule column shows {rows['nightly'][col]!r}, not '0 3 * * *': "
                               "is the schedule declared in the schema (else it is pruned) and is the jsonPath "
                               ".spec.schedule?")
    return Verdict.ok("`kubectl get backups` shows nightly with Schedule '0 3 * * *'")


def _solve_printer_column(t: Target) -> None:
    _apply_crd(t, _crd(t, {"schedule": {"type": "string"}}))
    _custom(t).create_namespaced_custom_object(group(t), "v1", t.namespace, PLURAL,
                                               _backup(t, "nightly", schedule="0 3 * * *"))


# --- 25.2: validation by the schema -----------------------------------------------------------
def _dry_create(t: Target, obj: dict) -> int:
    """The HTTP status a create would get (201, 422 ...); dryRun=All stores nothing."""
    from kubernetes.client.rest import ApiException

    try:
        _custom(t).create_namespaced_custom_object(group(t), "v1", t.namespace, PLURAL, obj, dry_run="All")
        return 201
    except ApiException as err:
        return err.status


def _verify_validation(t: Target) -> Verdict:
    crd, problem = _established_crd(t)
    if crd is None:
        return Verdict.not_yet(problem)
    trials = [("no retentionDays", _backup(t, "probe", schedule="@daily"), False),
              ("retentionDays: 0", _backup(t, "probe", schedule="@daily", retentionDays=0), False),
              ("retentionDays: 90", _backup(t, "probe", schedule="@daily", retentionDays=90), False),
              ("retentionDays: \"7\" (a string)", _backup(t, "probe", schedule="@daily", retentionDays="7"), False),
              ("retentionDays: 7", _backup(t, "probe", schedule="@daily", retentionDays=7), True),
              ("retentionDays: 30", _backup(t, "probe", schedule="@daily", retentionDays=30), True)]
    for what, obj, ok in trials:
        code = _dry_create(t, obj)
        if ok and code != 201:
            return Verdict.not_yet(f"a {KIND} with {what} was refused ({code}); it should be accepted")
        if not ok and code == 201:
            return Verdict.not_yet(f"the apiserver accepted a {KIND} with {what}; the schema should refuse it "
                                   "(spec.retentionDays: a required integer from 1 to 30)")
        if not ok and code != 422:
            return Verdict.not_yet(f"a {KIND} with {what} got HTTP {code}, not 422 Invalid")
    return Verdict.ok("the apiserver refuses a missing, 0, 90 or string retentionDays and accepts 7 and 30")


def _solve_validation(t: Target) -> None:
    _apply_crd(t, _crd(t, {"schedule": {"type": "string"},
                           "retentionDays": {"type": "integer", "minimum": 1, "maximum": 30}},
                       required=["retentionDays"]))


# --- 25.3: the status subresource --------------------------------------------------------------
def _verify_status(t: Target) -> Verdict:
    from kubernetes.client.rest import ApiException

    crd, problem = _established_crd(t)
    if crd is None:
        return Verdict.not_yet(problem)
    try:
        obj = _custom(t).get_namespaced_custom_object(group(t), "v1", t.namespace, PLURAL, "nightly")
    except ApiException as err:
        if err.status == 404:
            return Verdict.not_yet(f"there is no {KIND} nightly in {t.namespace!r} yet")
        raise
    phase = (obj.get("status") or {}).get("phase")
    if phase != "Scheduled":
        return Verdict.not_yet(f"nightly's status.phase is {phase!r}; set it to 'Scheduled' (through the status "
                               "subresource once it exists: kubectl patch --subresource=status)")
    try:
        echoed = _custom(t).patch_namespaced_custom_object(group(t), "v1", t.namespace, PLURAL, "nightly",
                                                           {"status": {"phase": "Tampered"}}, dry_run="All")
    except ApiException as err:
        return Verdict.not_yet(f"a dry-run patch of nightly failed ({err.status}): {err.reason}")
    if (echoed.get("status") or {}).get("phase") != "Scheduled":
        return Verdict.not_yet("a write to the main endpoint can still change status: enable the status "
                               "subresource (subresources: {status: {}}) so spec and status are written apart")
    return Verdict.ok("status is written only through /status: a spec write that tries to change it is ignored")


def _solve_status(t: Target) -> None:
    _apply_crd(t, _crd(t, {"schedule": {"type": "string"}}, status=True))
    c = _custom(t)
    c.create_namespaced_custom_object(group(t), "v1", t.namespace, PLURAL, _backup(t, "nightly", schedule="@daily"))
    c.patch_namespaced_custom_object_status(group(t), "v1", t.namespace, PLURAL, "nightly",
                                            {"status": {"phase": "Scheduled"}})


_GROUP_NOTE = "Its API group is `NAMESPACE.labkit.dev` (in the notebook: `default.labkit.dev`)."

EXERCISES = [
    Exercise(
        id="25.1",
        title="A printer column for kubectl get",
        statement=f"""Define a namespaced kind **{KIND}** (plural `{PLURAL}`, version `v1`) with a string field
`spec.schedule`. {_GROUP_NOTE} Give it a printer column **Schedule** so that `kubectl get {PLURAL}`
shows each schedule, and create a {KIND} **nightly** with the schedule `0 3 * * *`. The check asks the
apiserver for the same Table kubectl prints.""",
        verify=_verify_printer_column,
        solution=_solve_printer_column,
        solution_text="""```yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: backups.default.labkit.dev}
spec:
  group: default.labkit.dev
  scope: Namespaced
  names: {plural: backups, singular: backup, kind: Backup}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns: [{name: Schedule, type: string, jsonPath: .spec.schedule}]
    schema:
      openAPIV3Schema:
        type: object
        properties: {spec: {type: object, properties: {schedule: {type: string}}}}
---
apiVersion: default.labkit.dev/v1
kind: Backup
metadata: {name: nightly}
spec: {schedule: "0 3 * * *"}
```""",
        cleanup=_delete_crd,
        concept="CRDs and additionalPrinterColumns",
        difficulty="easy",
        cluster={"nodes": 2},
        timeout=15,
    ),
    Exercise(
        id="25.2",
        title="Let the schema refuse bad objects",
        statement=f"""Change the {KIND} schema so that the apiserver itself refuses a backup without a
sensible retention: `spec.retentionDays` is **required** and an **integer from 1 to 30**. The check
sends dry-run creates (nothing is stored) with a missing, 0, 90 and string retention, which must get
422 Invalid, and with 7 and 30, which must be accepted. {_GROUP_NOTE}""",
        verify=_verify_validation,
        solution=_solve_validation,
        solution_text="""In version v1's schema:

```yaml
spec:
  type: object
  required: [retentionDays]
  properties:
    schedule: {type: string}
    retentionDays: {type: integer, minimum: 1, maximum: 30}
```""",
        cleanup=_delete_crd,
        concept="structural schemas and validation",
        difficulty="medium",
        cluster={"nodes": 2},
        timeout=15,
    ),
    Exercise(
        id="25.3",
        title="Status apart from spec",
        statement=f"""A controller owns `status`, users own `spec`. Enable the **status subresource** for
{KIND} v1 (declare `status.phase` in the schema too), and set nightly's `status.phase` to
`Scheduled` through it. The check then tries, with a dry run, to change the phase through the main
endpoint: with the subresource on, the apiserver must ignore that. {_GROUP_NOTE}""",
        verify=_verify_status,
        solution=_solve_status,
        solution_text="""In version v1: `subresources: {status: {}}` and, in the schema,
`status: {type: object, properties: {phase: {type: string}}}`. Then:

```
kubectl patch backup nightly --subresource=status --type=merge -p '{"status":{"phase":"Scheduled"}}'
```""",
        cleanup=_delete_crd,
        concept="the status subresource",
        difficulty="hard",
        cluster={"nodes": 2},
        timeout=15,
    ),
]
