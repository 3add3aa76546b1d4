"""Protobuf request bodies (placeholder until the decoder lands)."""

from __future__ import annotations

from typing import Any

from . import errors
from .resources import ResourceType


def decode_request(raw: bytes, rt: ResourceType) -> Any:
    raise errors.unsupported_media_type("application/vnd.kubernetes.protobuf")
