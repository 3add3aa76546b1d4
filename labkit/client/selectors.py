"""Label selectors: the one implementation the apiserver and the controllers share.

A selector is a conjunction of requirements (``app=web``, ``tier in (a,b)``, ``!gpu``). It comes
in three shapes, and Kubernetes gives each shape its own answer to "what does an empty one select?":

* the ``?labelSelector=`` query string: empty selects everything (``kubectl get pods`` lists all);
* a ``metav1.LabelSelector`` object (``matchLabels`` + ``matchExpressions``), converted as
  ``metav1.LabelSelectorAsSelector`` does: ``{}`` selects everything, a missing one (nil) nothing.
  The controllers that own pods read it more strictly, see :func:`workload_selects`;
* a Service's ``spec.selector`` map: see :func:`service_selects`.

Parse errors raise :class:`InvalidSelector`; the apiserver turns them into a 400 BadRequest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_KEY = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_./]*)?[A-Za-z0-9]$")
_SET = re.compile(r"^(\S+)\s+(in|notin)\s*\((.*)\)$")
_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


class InvalidSelector(ValueError):
    """A selector that cannot be parsed (bad key, unknown operator)."""


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
    """A parsed selector. With no requirements it selects everything, unless it is :meth:`nothing`."""

    def __init__(self, requirements: list[Requirement], *, selects_nothing: bool = False):
        self.requirements = requirements
        self.selects_nothing = selects_nothing

    @property
    def empty(self) -> bool:
        """True when the selector puts no condition on labels (it selects everything)."""
        return not self.requirements and not self.selects_nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.selects_nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        """The selector as Kubernetes writes it (``labels.Selector.String()``): terms sorted by key,
        ``a=b``, ``a!=b``, ``a in (x,y)``, ``a notin (x,y)``, ``a``, ``!a``; empty selects everything."""
        return ",".join(_term(r) for r in sorted(self.requirements, key=lambda r: r.key))

    @classmethod
    def nothing(cls) -> LabelSelector:
        """The selector that matches no object (``labels.Nothing()``)."""
        return cls([], selects_nothing=True)

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        """The ``labelSelector`` query string; empty or absent selects everything."""
        return cls(_parse(text or ""))

    @classmethod
    def from_match(cls, selector: Mapping | None) -> LabelSelector:
        """A ``metav1.LabelSelector`` object: ``{}`` selects everything, ``None`` nothing."""
        if selector is None:
            return cls.nothing()
        reqs: list[Requirement] = []
        for k, v in (selector.get("matchLabels") or {}).items():
            reqs.append(Requirement(k, "=", (str(v),)))
        for expr in selector.get("matchExpressions") or []:
            op = _OPERATORS.get(expr.get("operator", ""))
            if op is None:
                raise InvalidSelector(f"invalid label selector operator {expr.get('operator')!r}")
            reqs.append(Requirement(expr.get("key", ""), op, tuple(expr.get("values") or ())))
        return cls(reqs)

    @classmethod
    def from_set(cls, labels: Mapping[str, str] | None) -> LabelSelector:
        """Every ``key=value`` of a plain map (``labels.SelectorFromSet``); empty selects everything."""
        return cls([Requirement(k, "=", (str(v),)) for k, v in (labels or {}).items()])


def workload_selects(selector: Mapping | None, labels: Mapping[str, str] | None) -> bool:
    """Does a ReplicaSet's or Deployment's ``spec.selector`` select these pod labels?

    Validation rejects an empty selector on these objects; should one reach a controller anyway,
    it matches nothing, not everything, as the Kubernetes controllers guard it, so that a stray
    object never adopts every pod of its namespace.
    """
    sel = LabelSelector.from_match(selector)
    return not sel.empty and sel.matches(labels)


def service_selects(selector: Mapping[str, str] | None, labels: Mapping[str, str] | None) -> bool:
    """Does a Service's ``spec.selector`` map select these pod labels?

    A Service without a selector (absent or ``{}``, which the API stores the same way) gets no
    endpoints from the endpoints controller: its Endpoints are written by hand.
    """
    return bool(selector) and LabelSelector.from_set(selector).matches(labels)


def _term(r: Requirement) -> str:
    if r.op in ("=", "!="):
        return f"{r.key}{r.op}{r.values[0] if r.values else ''}"
    if r.op in ("in", "notin"):
        return f"{r.key} {r.op} ({','.join(sorted(r.values))})"
    return r.key if r.op == "exists" else f"!{r.key}"


def format_selector(selector: Mapping | None) -> str:
    """A ``metav1.LabelSelector`` object as text, for tables and the scale subresource's
    ``status.selector``; ``""`` when it has no terms (tables print ``<none>``)."""
    if not selector:
        return ""
    return str(LabelSelector.from_match(selector))


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


def _check_key(key: str, text: str) -> str:
    if not key or not _KEY.match(key) or len(key) > 317:
        raise InvalidSelector(f'unable to parse requirement: invalid label key "{key}" in selector "{text}"')
    return key


def _parse(text: str) -> list[Requirement]:
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
