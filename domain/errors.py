"""A small hierarchy of domain errors; the gateway maps each to an HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every refusal the domain can give; `code` is a stable snake_case name."""

    code = "domain_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class NotFound(DomainError):
    code = "not_found"


class PermissionDenied(DomainError):
    code = "forbidden"


class InvalidTransition(DomainError):
    code = "invalid_transition"


class Conflict(DomainError):
    code = "conflict"


class Invalid(DomainError):
    """Well-formed input that breaks a rule (an unknown machine, a bad role)."""

    code = "invalid"
