"""The exercise format: what a learner is asked to do, and how the real system proves it was done."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

Difficulty = Literal["easy", "medium", "hard"]


@dataclass(frozen=True)
class Verdict:
    """What a verify function found: passed, or a hint naming what is still wrong."""

    passed: bool
    message: str

    @classmethod
    def ok(cls, message: str = "done") -> Verdict:
        return cls(True, message)

    @classmethod
    def not_yet(cls, hint: str) -> Verdict:
        return cls(False, hint)

    def __bool__(self) -> bool:
        return self.passed


def default_workdir(lab: str) -> Path:
    """Where a learner's own files for a lab live (CNI configs, runtime code): one folder per lab."""
    root = Path(os.environ.get("LABKIT_EXERCISES", Path.home() / "labkit-exercises"))
    return root / lab


@dataclass
class Target:
    """The system an exercise is checked against.

    ``kubeconfig`` is None for the container labs, which need no cluster. ``namespace`` is where
    the learner works (one per student in a class). ``owner`` prefixes the names of containers an
    exercise asks for, so two students on one machine do not collide. ``workdir`` holds files the
    learner writes.
    """

    kubeconfig: str | None = None
    namespace: str = "default"
    workdir: Path = field(default_factory=lambda: default_workdir("scratch"))
    owner: str = "ex"

    @cached_property
    def api_client(self) -> Any:
        if not self.kubeconfig:
            raise RuntimeError("this exercise needs a cluster: pass check(ID, cluster) or a kubeconfig path")
        from kubernetes import config

        return config.new_client_from_config(config_file=self.kubeconfig)

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client)

    @property
    def apps(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.api_client)

    @property
    def batch(self) -> Any:
        from kubernetes import client

        return client.BatchV1Api(self.api_client)

    def pod(self, name: str) -> Any:
        """The pod ``name`` in this namespace, or None while there is none (a verify asks "is it there yet?")."""
        return self._read_or_none(self.core.read_namespaced_pod, name)

    def deployment(self, name: str) -> Any:
        """The Deployment ``name`` in this namespace, or None while there is none."""
        return self._read_or_none(self.apps.read_namespaced_deployment, name)

    def _read_or_none(self, read: Callable[[str, str], Any], name: str) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return read(name, self.namespace)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def name(self, base: str) -> str:
        """A container or object name that is this learner's own (``owner-base``)."""
        return f"{self.owner}-{base}"


VerifyFn = Callable[[Target], Verdict]
ActionFn = Callable[[Target], None]


@dataclass(frozen=True)
class Exercise:
    """One exercise. ``id`` is "LAB.N", e.g. "21.2"; ``statement`` is Markdown.

    ``cluster`` is None when the exercise needs no cluster, else the keyword arguments of
    :class:`labkit.Cluster` it needs (e.g. ``{"nodes": 2}``); the tests start one cluster per
    distinct set and give each exercise its own namespace. ``setup`` makes the starting state (a
    tainted node); ``cleanup`` removes what setup and the solution made outside the namespace.
    ``needs`` names system parts (rows of labkit/system_parts.tsv) or "root".
    """

    id: str
    title: str
    statement: str
    verify: VerifyFn
    solution: ActionFn
    solution_text: str = ""
    setup: ActionFn | None = None
    cleanup: ActionFn | None = None
    concept: str = ""
    difficulty: Difficulty = "easy"
    cluster: dict[str, Any] | None = None
    needs: tuple[str, ...] = ()
    timeout: float = 60.0

    @property
    def lab(self) -> str:
        return self.id.split(".", 1)[0]

    def __post_init__(self) -> None:
        lab, _, n = self.id.partition(".")
        if not (lab.isdigit() and n.isdigit()):
            raise ValueError(f"exercise id {self.id!r} must look like '21.2' (lab number, dot, exercise number)")
        if self.difficulty not in ("easy", "medium", "hard"):
            raise ValueError(f"exercise {self.id}: difficulty must be easy, medium or hard")
