"""Label and field selectors, parsed once per request and evaluated per object.

Label selectors support ``=``, ``==``, ``!=``, ``in``, ``notin``, ``key`` (exists) and ``!key``.
Field selectors support ``=``, ``==`` and ``!=`` on the fields each resource declares
(``metadata.name``, ``spec.nodeName``, ``involvedObject.uid`` ...), like kube-apiserver.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .errors import bad_request

_KEY = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_./]*)?[A-Za-z0-9]$")


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector, such as ``tier in (web,db)``."""
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!":
            return self.key not in labels
        if self.op in ("=", "in"):
            return self.key in labels and labels[self.key] in self.values
        # "!=" and "notin" match objects without the key, as in Kubernetes
        return labels.get(self.key) not in self.values


class LabelSelector:
    """A parsed ``labelSelector`` query parameter (empty selects everything)."""

    def __init__(self, requirements: list[Requirement]):
        self.requirements = requirements

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        """Parse the query parameter; a malformed selector is a 400 BadRequest."""
        return cls(_parse_labels(text or ""))

    @classmethod
    def from_match(cls, selector: Mapping | None) -> LabelSelector:
        """Build from a ``metav1.LabelSelector`` object (matchLabels + matchExpressions)."""
        reqs: list[Requirement] = []
        if not selector:
            return cls(reqs)
        for k, v in (selector.get("matchLabels") or {}).items():
            reqs.append(Requirement(k, "=", (str(v),)))
        ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
        for expr in selector.get("matchExpressions") or []:
            op = ops.get(expr.get("operator", ""))
            if op is None:
                raise bad_request(f"invalid label selector operator {expr.get('operator')!r}")
            reqs.append(Requirement(expr.get("key", ""), op, tuple(expr.get("values") or ())))
        return cls(reqs)


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


_SET = re.compile(r"^(\S+)\s+(in|notin)\s*\((.*)\)$")


def _check_key(key: str, text: str) -> str:
    if not key or not _KEY.match(key) or len(key) > 317:
        raise bad_request(f'unable to parse requirement: invalid label key "{key}" in selector "{text}"')
    return key


def _parse_labels(text: str) -> list[Requirement]:
    reqs: list[Requirement] = []
    for part in _split_top(text):
        m = _SET.match(part)
        if m:
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append(Requirement(_check_key(m.group(1), text), m.group(2), values))
            continue
        for op in ("!=", "==", "="):
            if op in part:
                key, _, value = part.partition(op)
                reqs.append(Requirement(_check_key(key.strip(), text), "!=" if op == "!=" else "=",
                                        (value.strip(),)))
                break
        else:
            if part.startswith("!"):
                reqs.append(Requirement(_check_key(part[1:].strip(), text), "!"))
            else:
                reqs.append(Requirement(_check_key(part, text), "exists"))
    return reqs


FieldGetter = Callable[[dict], str]


class FieldSelector:
    """A parsed ``fieldSelector`` query parameter: a conjunction of field (in)equalities."""

    def __init__(self, terms: list[tuple[str, bool, str]]):
        self.terms = terms  # (field, equal?, value)

    @property
    def empty(self) -> bool:
        return not self.terms

    @classmethod
    def parse(cls, text: str | None, allowed: Mapping[str, FieldGetter]) -> FieldSelector:
        """Parse the query parameter; a malformed selector is a 400 BadRequest."""
        terms: list[tuple[str, bool, str]] = []
        for part in (text or "").split(","):
            part = part.strip()
            if not part:
                continue
            for op in ("!=", "==", "="):
                if op in part:
                    field, _, value = part.partition(op)
                    field = field.strip()
                    if field not in allowed:
                        raise bad_request(f'field label not supported: {field}')
                    terms.append((field, op != "!=", value.strip()))
                    break
            else:
                raise bad_request(f'invalid selector: \'{part}\'; can\'t understand \'{part}\'')
        return cls(terms)

    def equals(self, wanted: str) -> str | None:
        """The value of a ``<wanted>=X`` term, if any: lets a list use a point lookup or an index."""
        for field, eq, value in self.terms:
            if field == wanted and eq:
                return value
        return None

    def name_equals(self) -> str | None:
        return self.equals("metadata.name")

    def matches(self, fields: Mapping[str, str]) -> bool:
        for field, eq, value in self.terms:
            if (fields.get(field, "") == value) != eq:
                return False
        return True
