"""Who made a request: the user an authenticator found (kube-apiserver's ``user.Info``)."""

from __future__ import annotations

from dataclasses import dataclass, field

AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
MASTERS = "system:masters"
NODES = "system:nodes"
ANONYMOUS = "system:anonymous"
SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict, compare=False, hash=False)

    def with_authenticated(self) -> UserInfo:
        """kube-apiserver adds ``system:authenticated`` to every user an authenticator accepted."""
        if AUTHENTICATED in self.groups:
            return self
        return UserInfo(self.name, self.uid, (*self.groups, AUTHENTICATED), self.extra)

    def review_dict(self) -> dict:
        """The ``userInfo`` of a SelfSubjectReview / TokenReview."""
        out: dict = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        if self.extra:
            out["extra"] = self.extra
        return out


# the identity of requests on an apiserver without authentication (loopback plain HTTP):
# allowed everything, as the old insecure port was
UNSECURED = UserInfo("system:unsecured", "", (MASTERS, AUTHENTICATED))
