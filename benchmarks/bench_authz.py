#!/usr/bin/env python
"""The cost of authentication and RBAC per request, with 10 and with 1,000 RoleBindings, side by side.

A class of N students is N namespaces, each with a RoleBinding of the ``edit`` ClusterRole to its
student, beside the default ClusterRoles and ClusterRoleBindings a secure cluster starts with.
The authorizer is fed exactly what the watch cache would feed it, then timed on the requests a
student makes: allowed in their own namespace, refused in another's, discovery (a non-resource
URL), and the whole decision as the filter makes it (parse the path, look up the token, authorize).
kube-apiserver's RBAC authorizer scans every binding; labkit's indexes bindings by subject, so the
cost should not grow with the class.

    .venv/bin/python benchmarks/bench_authz.py [--bindings 10 1000] [--requests 20000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from multidict import MultiDict

from labkit.controlplane.apiserver.auth import bootstrap
from labkit.controlplane.apiserver.auth.attributes import from_request
from labkit.controlplane.apiserver.auth.rbac import RBACAuthorizer
from labkit.controlplane.apiserver.auth.tokens import TokenFile, append_token
from labkit.controlplane.apiserver.auth.user import UserInfo


def authorizer(students: int) -> RBACAuthorizer:
    rbac = RBACAuthorizer()
    for role in bootstrap.cluster_roles():
        rbac._put(f"/registry/clusterroles/{role['metadata']['name']}", json.dumps(role).encode())
    for b in bootstrap.cluster_role_bindings():
        rbac._put(f"/registry/clusterrolebindings/{b['metadata']['name']}", json.dumps(b).encode())
    for i in range(students):
        binding = {"metadata": {"name": "edit", "namespace": f"student-{i}"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                   "subjects": [{"kind": "User", "name": f"student-{i}"}]}
        rbac._put(f"/registry/rolebindings/student-{i}/edit", json.dumps(binding).encode())
    return rbac


def per_call_us(fn, n: int) -> float:  # noqa: ANN001
    fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def measure(students: int, n: int) -> dict[str, float]:
    rbac = authorizer(students)
    me = students // 2
    user = UserInfo(f"student-{me}", "", ("students", "system:authenticated"))
    q: MultiDict[str] = MultiDict()
    own = from_request(user, "GET", f"/apis/apps/v1/namespaces/student-{me}/deployments", q)
    other = from_request(user, "GET", f"/api/v1/namespaces/student-{(me + 1) % students}/pods", q)
    discovery = from_request(user, "GET", "/apis/apps/v1", q)
    assert rbac.authorize(own)[0] and not rbac.authorize(other)[0] and rbac.authorize(discovery)[0]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "tokens.csv"
        tokens = [append_token(path, f"student-{i}", ["students"]) for i in range(students)]
        token_file = TokenFile(path)
        token = tokens[me]

        def whole() -> None:
            u = token_file.lookup(token).with_authenticated()  # type: ignore[union-attr]
            a = from_request(u, "PATCH", f"/apis/apps/v1/namespaces/student-{me}/deployments/web/scale", q)
            assert rbac.authorize(a)[0]

        return {"allowed, own namespace": per_call_us(lambda: rbac.authorize(own), n),
                "refused, another namespace": per_call_us(lambda: rbac.authorize(other), n),
                "discovery (non-resource URL)": per_call_us(lambda: rbac.authorize(discovery), n),
                "token + path + RBAC (whole filter)": per_call_us(whole, n),
                "bindings held": len(rbac.bindings)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bindings", type=int, nargs="+", default=[10, 1000], help="student RoleBindings per run")
    ap.add_argument("--requests", type=int, default=20000, help="timed calls per figure")
    args = ap.parse_args()
    results = {b: measure(b, args.requests) for b in args.bindings}
    rows = list(next(iter(results.values())))
    print(f"RBAC authorizer, microseconds per request ({args.requests} calls each, one core)\n")
    print(f"{'':36}" + "".join(f"{str(b) + ' RoleBindings':>20}" for b in args.bindings))
    for row in rows:
        fmt = "{:>20.0f}" if row == "bindings held" else "{:>20.1f}"
        print(f"{row:36}" + "".join(fmt.format(results[b][row]) for b in args.bindings))


if __name__ == "__main__":
    main()
