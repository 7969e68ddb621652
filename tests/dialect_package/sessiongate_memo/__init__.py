"""memo: sessions that carry a note, kept in a table of the dialect's own (an example third-party dialect)."""

from __future__ import annotations

from sessiongate_memo.plugin import MemoDialect, MemoOptions

__all__ = ("MemoDialect", "MemoOptions")
