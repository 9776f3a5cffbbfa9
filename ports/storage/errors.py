"""The errors every storage adapter raises, whatever the repository."""

from __future__ import annotations


class StorageError(Exception):
    """Base of the errors a storage adapter raises."""


class StorageUnavailable(StorageError):
    """The database cannot be reached or timed out; nothing was written."""


class ConcurrentUpdate(StorageError):
    """Another transaction changed the same rows at the same moment; nothing was written.
    Trying again usually succeeds."""


class DuplicateKey(StorageError):
    """A unique key is taken. `key` names it as the schema does, e.g. "users.email_key"."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key
