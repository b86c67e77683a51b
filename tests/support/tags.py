"""HTML read back as a browser's parser sees it: the start tags and their attributes."""

from __future__ import annotations

from html.parser import HTMLParser


class _StartTags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def start_tags(text: str) -> list[tuple[str, dict[str, str | None]]]:
    """Every start tag in document order, with its attributes unescaped."""
    parser = _StartTags()
    parser.feed(text)
    parser.close()
    return parser.found
