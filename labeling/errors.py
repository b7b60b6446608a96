"""Domain errors. The edge (app/errors.py) maps each class to one HTTP status and CLI exit."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: which field, on which 1-based line, and why."""

    message: str
    field: str | None = None
    line: int | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"message": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.line is not None:
            out["line"] = self.line
        return out

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class DomainError(Exception):
    """Base of the errors a caller is expected to handle."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """The input breaks a rule; ``problems`` lists each one (the first ``MAX_LISTED``)."""

    MAX_LISTED = 100

    def __init__(self, message: str, problems: list[Problem] | None = None, total: int | None = None):
        super().__init__(message)
        self.problems = list(problems or [])[: self.MAX_LISTED]
        self.total = total if total is not None else len(problems or [])

    @classmethod
    def one(cls, message: str, field: str | None = None, line: int | None = None) -> InvalidInput:
        return cls(message, [Problem(message, field, line)])


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    pass


class Forbidden(DomainError):
    """The caller is known but may not do this to this object."""


class Unavailable(DomainError):
    """This process lacks what the request needs (an optional extra, say); another process, or
    this one once it is installed, can answer it."""
