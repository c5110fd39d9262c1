"""A small bounded memo for pure answers that reads ask again (a dashboard refreshed)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Final, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: The most items (buckets, ids) an answer may hold to be remembered: memos stay small.
MEMO_UP_TO: Final = 400


class Memo(Generic[K, V]):
    """Up to ``kept`` answers by key; a put into a full memo forgets all it held.

    Only for answers that are a pure function of their key (immutable values, never
    ``None``): a forgotten answer is computed again, never wrong. Safe to share between
    threads: a race between puts can at worst forget an answer, or hold one or two past
    ``kept`` until the next put.
    """

    __slots__ = ("_answers", "kept")

    def __init__(self, kept: int) -> None:
        self.kept = kept
        self._answers: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        """The answer remembered for ``key``, else ``None``."""
        return self._answers.get(key)

    def put(self, key: K, value: V) -> V:
        """Remember ``value`` for ``key``; return ``value``."""
        if len(self._answers) >= self.kept:
            self._answers.clear()
        self._answers[key] = value
        return value

    def clear(self) -> None:
        """Forget every answer (what they depend on has changed)."""
        self._answers.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._answers

    def __len__(self) -> int:
        return len(self._answers)
