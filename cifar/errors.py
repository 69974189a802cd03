"""Exceptions for bad input: the CLI turns each into a one-line message and exit code 2."""


class CifarError(Exception):
    """Bad input or usage that the user can fix; the message names the value and the fix."""


class DataError(CifarError):
    """CIFAR-10 files are missing, truncated or malformed."""


class CheckpointError(CifarError):
    """A checkpoint file is unreadable or belongs to another architecture."""


class InputError(CifarError, ValueError):
    """An image batch handed to a backend has the wrong shape or dtype."""


class ParityError(CifarError):
    """An exported model disagrees with the eager model it was exported from."""


class CacheError(CifarError):
    """The cache folder cannot be created or written."""


class BackendUnavailableError(CifarError):
    """A backend cannot run with the installed libraries."""


def first_line(error: BaseException) -> str:
    """Return the first non-empty line of ``error``'s message, or its type name."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__
