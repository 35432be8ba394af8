"""The few exceptions rawlab raises on purpose.

Every error that is the input's fault derives from :class:`RawlabError`; the CLI
turns those into one line naming the file and exits with status 2.  Anything
else is an internal error (exit 1).
"""

from __future__ import annotations


class RawlabError(Exception):
    """Base class: a problem with the input or the request, not a bug.

    Parameters
    ----------
    message
        What is wrong, in one line.
    path
        The file concerned, when there is one; it is prefixed to ``str(error)``.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class UnsupportedFile(RawlabError):
    """The file is valid but of a kind rawlab does not read (yet)."""


class CorruptFile(RawlabError):
    """The file is damaged, truncated or inconsistent."""


class LimitExceeded(RawlabError):
    """The input asks for more than rawlab allows (pixels, memory, tags)."""


class InvalidParams(RawlabError):
    """Stage parameters, a recipe or a look file are wrong."""


class StageError(RawlabError):
    """A stage was given a frame it cannot work on (wrong encoding, shape)."""
