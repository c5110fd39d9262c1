"""MkDocs hooks for the docs site (``mkdocs.yml``: ``hooks``).

Docstrings hold doctests as plain text (``>>>`` lines and their output). Markdown would
read an output such as ``['AUD 0.01', 'AUD 0.00']`` as a link, so every doctest block
outside a code fence is fenced as ``pycon`` before the page (or the API reference built
from the docstrings) is converted.
"""

from __future__ import annotations

import re
from typing import Any

from markdown import Markdown
from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor

_FENCE = re.compile(r"^\s*(```|~~~)")
_PROMPT = re.compile(r"^(\s*)>>> ")


def fence_doctests(lines: list[str]) -> list[str]:
    """``lines`` with each doctest block outside a fence (a ``>>>`` line, then every line
    up to the next blank one) wrapped in a ``pycon`` fence."""
    out: list[str] = []
    fenced, i = False, 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            fenced = not fenced
        prompt = None if fenced else _PROMPT.match(line)
        if prompt is None:
            out.append(line)
            i += 1
            continue
        indent = prompt.group(1)
        block = []
        while i < len(lines) and lines[i].strip():
            block.append(lines[i])
            i += 1
        out += ["", f"{indent}```pycon", *block, f"{indent}```", ""]
    return out


class _Doctests(Preprocessor):
    def run(self, lines: list[str]) -> list[str]:
        return fence_doctests(lines)


class DoctestFences(Extension):
    """The Markdown extension that fences doctest blocks."""

    def extendMarkdown(self, md: Markdown) -> None:
        # Before the fenced-code preprocessor (priority 25) sees the page.
        md.preprocessors.register(_Doctests(md), "doctest_fences", 30)


def on_config(config: Any) -> Any:
    """Add :class:`DoctestFences` to the site's Markdown extensions."""
    config.markdown_extensions.append(DoctestFences())
    return config
