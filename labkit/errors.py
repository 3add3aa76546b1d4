"""The errors every labkit layer raises, kept at the bottom so that images, oci and runtime share them.

Each message says what to do about it; the CLI prints it as it is.
"""


class LabkitError(Exception):
    """Something a container, image or runtime call could not do; the message says what to do."""


class NotFound(LabkitError):
    """An image, sandbox or container that does not exist."""


class Unsupported(LabkitError):
    """The host lacks what this backend needs (root, Linux, a binary, a daemon)."""
