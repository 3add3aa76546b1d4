"""Label and field selectors, parsed once per request and evaluated per object.

Label selectors are :mod:`labkit.client.selectors` (the controllers use the same code); here they
only learn to answer a parse error with 400 BadRequest. An empty ``?labelSelector=`` selects
everything. Field selectors support ``=``, ``==`` and ``!=`` on the fields each resource declares
(``metadata.name``, ``spec.nodeName``, ``involvedObject.uid`` ...), like kube-apiserver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from labkit.client import selectors as _client
from labkit.client.selectors import InvalidSelector, Requirement

from .errors import bad_request

__all__ = ["FieldSelector", "LabelSelector", "Requirement"]


class LabelSelector(_client.LabelSelector):
    """:class:`labkit.client.selectors.LabelSelector`, whose parse errors answer 400 BadRequest."""

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        """Parse the query parameter; a malformed selector is a 400 BadRequest."""
        try:
            return super().parse(text)
        except InvalidSelector as exc:
            raise bad_request(str(exc)) from None

    @classmethod
    def from_match(cls, selector: Mapping | None) -> LabelSelector:
        """Build from a ``metav1.LabelSelector`` object; an unknown operator is a 400 BadRequest."""
        try:
            return super().from_match(selector)
        except InvalidSelector as exc:
            raise bad_request(str(exc)) from None


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
