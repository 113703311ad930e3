"""Typed failures and notes that carry facts, never sentences: a `kind` names what happened and `facts` hold
what the sentence needs (a photo's size, a limit, a file's name). `components.messages` words them.

Plain Python; imports nothing of the app, so every services module may use it.
"""

from __future__ import annotations

from typing import NamedTuple


class Refusal(Exception):
    """A failure a person can cause or meet: `kind` names it, `facts` carry its numbers and names, and
    `retryable` says whether sending the same thing again may help. str(err) is for logs."""

    kind = "refused"
    retryable = False

    def __init__(self, kind: str | None = None, **facts: object) -> None:
        super().__init__(kind or type(self).kind, facts)
        self.kind = kind or type(self).kind
        self.facts = facts

    def __reduce__(self):
        return _rebuild, (type(self), self.kind, self.facts)

    def __str__(self) -> str:
        return self.kind + "".join(f" {name}={value!r}" for name, value in self.facts.items())


def _rebuild(cls: type[Refusal], kind: str, facts: dict) -> Refusal:
    error = cls.__new__(cls)
    Refusal.__init__(error, kind, **facts)
    return error


class Note(NamedTuple):
    """Something a person is told that is not a failure: a change made to their photo, or a step of a run.
    A pair, so a result's notes are kept as JSON as they are."""

    kind: str
    facts: dict = {}  # noqa: RUF012 - never mutated: `note` always gives a fresh one


def note(kind: str, **facts: object) -> Note:
    """A `Note` of `kind` with `facts`."""
    return Note(kind, facts)
