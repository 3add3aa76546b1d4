"""Static bearer tokens from kube-apiserver's ``--token-auth-file``: ``token,user,uid,"group1,group2"``.

The file is read again whenever it changes, so a token added while the server runs (a student
joining a class) works at once, without a restart.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
import threading
from pathlib import Path

from .user import UserInfo


class TokenFileError(ValueError):
    """A line of the token file is not ``token,user,uid[,"groups"]``."""


def parse(text: str, where: str = "token file") -> dict[str, UserInfo]:
    users: dict[str, UserInfo] = {}
    for n, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) < 3 or not row[0] or not row[1]:
            raise TokenFileError(f"{where}, line {n}: want token,user,uid[,\"group1,group2\"], got {len(row)} "
                                 "field(s)")
        groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
        users[row[0]] = UserInfo(row[1], row[2], groups)
    return users


class TokenFile:
    """The tokens of one file, re-read when its modification time or size changes."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, UserInfo] = {}
        self._lock = threading.Lock()
        self._reload()

    def _reload(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise TokenFileError(f"no token file at {self.path}: write one line per user, "
                                 "token,user,uid,\"group1,group2\"") from None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            with self._lock:
                self._users = parse(self.path.read_text(), str(self.path))
                self._stamp = stamp

    def lookup(self, token: str) -> UserInfo | None:
        user = self._users.get(token)
        if user is None:  # perhaps added since: look at the file again (one stat)
            try:
                self._reload()
            except (OSError, TokenFileError):
                return None
            user = self._users.get(token)
        return user


def new_token() -> str:
    return secrets.token_urlsafe(24)


def append_token(path: str | os.PathLike, user: str, groups: list[str] | tuple[str, ...] = (),
                 uid: str | None = None, token: str | None = None) -> str:
    """Add one user to a token file (made if absent) and return its token."""
    if not user or any(c in user for c in ",\n\""):
        raise ValueError(f"user name {user!r} must be non-empty and hold no comma, quote or newline")
    for g in groups:
        if not g or any(c in g for c in ",\n\""):
            raise ValueError(f"group name {g!r} must be non-empty and hold no comma, quote or newline")
    token = token or new_token()
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([token, user, uid or user, ",".join(groups)])
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(buf.getvalue())
    return token
