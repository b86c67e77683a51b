"""The contact sheet, opened in headless Chromium: every image loads, metadata matches."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser

import pytest

from pipeline.cli import gallery, ops
from tests.support import images
from tests.support.local_stack import new_stack, wait_final

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The probe runs after the page's load event and writes what the browser decoded.
PROBE = """<script>
window.addEventListener('load', () => {
  const found = [...document.querySelectorAll('img')].map(
    img => ({src: img.getAttribute('src'), w: img.naturalWidth, h: img.naturalHeight}));
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
</script>"""


def rendered_images(page) -> list[dict]:
    probed = page.with_name("probed.html")
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    with tempfile.TemporaryDirectory() as profile_dir:
        done = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile_dir}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                probed.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    marker = '<pre id="probe">'
    assert marker in done.stdout, done.stderr[-2000:]
    text = done.stdout.split(marker, 1)[1].split("</pre>", 1)[0]
    return json.loads(text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))


class _Cards(HTMLParser):
    """What the page shows per card: its key and each data-field value."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: dict[str, dict[str, str]] = {}
        self._key: str | None = None
        self._field: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "section" and "data-key" in attributes:
            self._key = attributes["data-key"]
            self.cards[self._key] = {}
        elif tag == "dd" and self._key:
            self._field = attributes.get("data-field")

    def handle_data(self, data):
        if self._key and self._field:
            self.cards[self._key][self._field] = self.cards[self._key].get(self._field, "") + data

    def handle_endtag(self, tag):
        if tag == "dd":
            self._field = None


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="Debian's chromium is not installed here (.ci/run installs it)",
)
def test_every_image_loads_in_chromium_and_metadata_matches_the_table(tmp_path):
    stack = new_stack(profile="web")
    with stack:
        target = stack.target()
        objects = {
            "input/photo.jpg": images.jpeg(1920, 1080),
            "input/logo.png": images.png(400, 300, "RGBA"),
            "input/rotated.jpg": images.jpeg(1200, 800, orientation=6),
            "input/broken.jpg": b"\xff\xd8\xff not really",
        }
        ops.upload_bytes(target, objects)
        wait_final(target, list(objects))
        page = gallery.write(target, tmp_path / "gallery")
        entries = {entry["image_name"]: entry for entry in ops.items(target)}

    # THEN every <img> on the page decoded in the browser at the size the item records
    found = rendered_images(page)
    ok = [e for e in entries.values() if e["status"] == "ok"]
    assert len(found) == sum(1 + len(e["renditions"]) for e in ok)
    assert all(img["w"] > 0 and img["h"] > 0 for img in found), found
    by_src = {img["src"]: (img["w"], img["h"]) for img in found}
    for entry in ok:
        for rendition in entry["renditions"]:
            src = "renditions/" + rendition["key"].replace(" ", "%20")
            assert by_src[src] == (rendition["width"], rendition["height"])

    # AND each card shows what the metadata table holds
    parser = _Cards()
    parser.feed(page.read_text())
    assert set(parser.cards) == set(entries)
    for key, entry in entries.items():
        card = parser.cards[key]
        assert card["status"] == entry["status"]
        assert card["profile"] == entry["profile"]
        assert card["bytes"] == str(entry["original_size_bytes"])
        if entry["status"] == "ok":
            assert card["original"] == f"{entry['original_width']}x{entry['original_height']}"
        else:
            assert card["error"] == entry["error"]
