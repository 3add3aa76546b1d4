"""The classroom's parts that need no cluster: rosters, the gradebook's rules, the progress page's
data, bootstrap tokens and the node-certificate approver's refusals (tests/test_class.py runs a class)."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

import pytest

from labkit.classroom import gradebook, progress
from labkit.classroom.nodejoin import _node_subject
from labkit.classroom.roster import numbered, read_roster
from labkit.controlplane.apiserver.auth import bootstraptokens
from labkit.node.bootstrap import JoinError, certificate_request, parse_token


def test_a_roster_names_students_and_sizes_and_says_which_line_is_wrong(tmp_path) -> None:
    f = tmp_path / "roster.txt"
    f.write_text("# monday\nAlice\nbob, large\n\n")
    assert [(s.name, s.size, s.namespace) for s in read_roster(f)] == [
        ("alice", "small", "class-alice"), ("bob", "large", "class-bob")]
    f.write_text("alice\nbad_name\n")
    with pytest.raises(ValueError, match=r"roster.txt:2: 'bad_name' cannot be a user and namespace name"):
        read_roster(f)
    f.write_text("alice\nalice,huge\n")
    with pytest.raises(ValueError, match="unknown size 'huge': choose small, medium, large"):
        read_roster(f)
    with pytest.raises(ValueError, match="at least one student"):
        numbered(0)


def test_a_pass_stays_in_the_gradebook_and_the_page_shows_every_cell(tmp_path) -> None:
    book = tmp_path / "gradebook.csv"
    R = gradebook.Result
    gradebook.record(book, [R("student-1", "14.1", True, "2026-12-06T10:00:00Z"),
                            R("student-2", "14.1", False, "2026-12-06T10:00:00Z")])
    gradebook.record(book, [R("student-1", "14.1", False, "2026-12-06T10:05:00Z"),  # tidied up afterwards
                            R("student-2", "14.1", True, "2026-12-06T10:05:00Z")])
    assert book.read_text().splitlines() == ["student,exercise,passed,when",
                                             "student-1,14.1,true,2026-12-06T10:00:00Z",
                                             "student-2,14.1,true,2026-12-06T10:05:00Z"]
    snap = progress.snapshot(book, numbered(3), ["14.1", "13.1"])
    assert len(snap["cells"]) == 6 and snap["updated"] == "2026-12-06T10:05:00Z"
    assert {(c["student"], c["exercise"]) for c in snap["cells"] if c["passed"]} == {
        ("student-1", "14.1"), ("student-2", "14.1")}
    page = progress.page("Class t", numbered(2), ["14.1"])
    assert 'id="cell-student-2-14.1"' in page and "http" not in page.replace("http-equiv", "")


def _secret(tid: str, secret: str, expires: datetime, usage: str = "true") -> dict:
    b64 = lambda v: base64.b64encode(v.encode()).decode()  # noqa: E731
    return {"type": bootstraptokens.SECRET_TYPE, "metadata": {"name": f"bootstrap-token-{tid}"},
            "data": {"token-id": b64(tid), "token-secret": b64(secret), "usage-bootstrap-authentication": b64(usage),
                     "expiration": b64(expires.strftime("%Y-%m-%dT%H:%M:%SZ")),
                     "auth-extra-groups": b64("system:bootstrappers:labkit:default-node-token,system:masters")}}


def test_a_bootstrap_token_signs_in_as_a_bootstrapper_until_it_expires() -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    secrets = {"bootstrap-token-abcdef": _secret("abcdef", "0123456789abcdef", later),
               "bootstrap-token-old000": _secret("old000", "0123456789abcdef", later - timedelta(hours=2)),
               "bootstrap-token-nouse0": _secret("nouse0", "0123456789abcdef", later, usage="false")}

    async def get(name: str) -> dict | None:
        return secrets.get(name)

    def user(token: str):  # noqa: ANN202
        return asyncio.run(bootstraptokens.user(token, get))

    u = user("abcdef.0123456789abcdef")
    assert u.name == "system:bootstrap:abcdef"
    # extra groups only within system:bootstrappers: a Secret cannot make its holder a master
    assert u.groups == ("system:bootstrappers", "system:bootstrappers:labkit:default-node-token",
                        "system:authenticated")
    assert user("abcdef.0123456789abcdee") is None  # wrong secret
    assert user("old000.0123456789abcdef") is None  # expired
    assert user("nouse0.0123456789abcdef") is None  # not for authentication
    assert user("zzzzzz.0123456789abcdef") is None  # no such Secret
    with pytest.raises(JoinError, match="looks like 'abcdef.0123456789abcdef'"):
        parse_token("not-a-token")


def test_the_approver_signs_only_a_kubelets_subject() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    _, csr = certificate_request("laptop-1")
    assert _node_subject(csr) == "laptop-1"
    key = ec.generate_private_key(ec.SECP256R1())
    admin = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
        x509.NameAttribute(NameOID.COMMON_NAME, "system:node:laptop-1")])).sign(key, hashes.SHA256())
    from cryptography.hazmat.primitives import serialization

    assert _node_subject(admin.public_bytes(serialization.Encoding.PEM)) is None
