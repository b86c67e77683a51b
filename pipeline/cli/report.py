"""Plain-text tables of metadata items, shared by `imgpipe ls` and `imgpipe demo`."""

from __future__ import annotations

from typing import Any

from lambda_pkg import records

HEADER = ("key", "original", "renditions", "status", "error")
MAX_CELL = 60
FINAL = records.FINAL_STATUSES
DEAD_LETTERED = "dlq"  # retries ran out: the event is on the dead-letter queue


def renditions_summary(entry: dict[str, Any]) -> str:
    """Distinct rendition sizes in profile order: '1600x900, 800x450, 200x200'."""
    sizes = [f"{r['width']}x{r['height']}" for r in entry.get("renditions", [])]
    return ", ".join(dict.fromkeys(sizes)) or "-"


def item_row(
    key: str,
    entry: dict[str, Any] | None,
    fallback_status: str = "missing",
    dead_letter_error: str | None = None,
) -> tuple:
    """One row. `dead_letter_error` (the key's latest failure record on the DLQ) decides the
    status unless the item is final: the retries ran out before any ok/failed result."""
    entry = entry or {}
    width, height = entry.get("original_width", 0), entry.get("original_height", 0)
    original = f"{width}x{height}" if width and height else "-"
    status, error = entry.get("status") or fallback_status, entry.get("error", "")
    if dead_letter_error is not None and entry.get("status") not in FINAL:
        status, error = DEAD_LETTERED, dead_letter_error
    return (key, original, renditions_summary(entry), status, error)


def table(rows: list[tuple[str, ...]]) -> str:
    """Aligned columns; the last column (the error) is left free to run long."""
    rows = [HEADER, *rows]
    widths = [min(max(len(row[i]) for row in rows), MAX_CELL) for i in range(len(HEADER) - 1)]
    lines = []
    for row in rows:
        cells = [row[i][:MAX_CELL].ljust(widths[i]) for i in range(len(widths))]
        lines.append("  ".join(cells) + ("  " + row[-1] if row[-1] else ""))
    return "\n".join(line.rstrip() for line in lines)
