"""Which cabinets a query covers: every one, a subtree, or one cabinet. The access rule
(app.domain.access) computes it for a principal; every query for tenant data takes one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """Every cabinet (`path_prefix` None), the subtree whose paths start with the prefix,
    or (`exact`) the one cabinet of that path."""

    path_prefix: str | None
    exact: bool = False

    @classmethod
    def everything(cls) -> Scope:
        return cls(None)

    @classmethod
    def subtree(cls, path: str) -> Scope:
        return cls(path)

    @classmethod
    def cabinet(cls, path: str) -> Scope:
        return cls(path, exact=True)

    def contains(self, cabinet_path: str) -> bool:
        if self.path_prefix is None:
            return True
        if self.exact:
            return cabinet_path == self.path_prefix
        return cabinet_path.startswith(self.path_prefix)
