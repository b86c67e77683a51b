"""`imgpipe gallery`: a static page of every image the stack has seen (gallery_page.py
writes the markup), with local copies of the images it shows, or presigned URLs.

With a CDN (the local stack's, or a deployed stack's `imgpipe:cdn`), each rendition is the
`<picture>` element `imgpipe html` prints, its URLs on the CDN: the browser picks the format
and nothing of the renditions is downloaded. Originals stay local copies (or presigned):
the CDN serves `processed/` only.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from pipeline.cli import gallery_page, listing, markup, ops
from pipeline.cli.targets import Target

PRESIGN_EXPIRY_S = 3600
# Downloads at once: a 1,000-image gallery is thousands of small objects, each a round trip.
PARALLEL_DOWNLOADS = 8
CDN_TIMEOUT_S = 30
NAME_MAX = 255  # bytes in one file name (Linux, macOS)
SUFFIX_MAX = 16  # a longer "extension" is part of a name, not a file type


def write(
    target: Target, out_dir: Path, presign: bool = False, copy_through_cdn: bool = False
) -> Path:
    """Write `out_dir/index.html`; images are local copies under `out_dir` (only those the
    page shows) unless `presign` (URLs valid for an hour). With `target.cdn`, renditions are
    `<picture>`s on the CDN, or with `copy_through_cdn` local copies of every format fetched
    through it: a page that outlives the stack serving it (the demo's)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    s3 = ops.aws(target, "s3")
    names = target.names
    copies = _Copies(s3, out_dir)
    etags = _listed(lambda: ops.output_etags(target))
    if presign:
        original_for = _presigner(s3, names.input_bucket)
    else:
        originals = _listed(lambda: {o["Key"]: o["ETag"] for o in ops.input_objects(target)})
        original_for = copies.link(names.input_bucket, "originals", originals)
    src_for, through = _renditions(
        target, s3, copies, etags, presign=presign, copy_through_cdn=copy_through_cdn
    )
    source = f"bucket {names.input_bucket}{through}"
    pictures = target.cdn is not None
    text = gallery_page.page(entries(target), src_for, original_for, source, etags, pictures)
    copies.fetch()
    page = out_dir / "index.html"
    page.write_text(text, encoding="utf-8")
    return page


def _renditions(
    target: Target,
    s3: Any,
    copies: _Copies,
    etags: dict[str, str] | None,
    *,
    presign: bool,
    copy_through_cdn: bool,
) -> tuple[gallery_page.SrcFor, str]:
    """Where the page's renditions come from, and how the page says so."""
    bucket = target.names.output_bucket
    if target.cdn is None:
        if presign:
            return _presigner(s3, bucket), ""
        return copies.link(bucket, "renditions", etags), ""
    if copy_through_cdn:
        copied = copies.link(bucket, "renditions", etags, via=target.cdn)
        return copied, f", renditions copied through the CDN at {target.cdn}"
    return partial(markup.object_url, target.cdn), f", renditions through the CDN at {target.cdn}"


def entries(target: Target) -> list[dict[str, Any]]:
    """Every image `imgpipe ls` lists, as items: the table's own where `ls` shows the
    table's status, else what `ls` knows (a dead-lettered event, a pending upload)."""
    items = ops.items(target)
    by_key = {item["image_name"]: item for item in items}
    found = []
    for listed in listing.gather(target, items=items):
        item = by_key.get(listed.key)
        if item is not None and item.get("status") == listed.status:
            found.append(item)
            continue
        known = {
            "profile": listed.profile,
            "original_size_bytes": listed.original_bytes,
            "error": listed.error,
        }
        found.append(
            {"image_name": listed.key, "status": listed.status}
            | {name: value for name, value in known.items() if value is not None}
        )
    return found


def _listed(listing: Callable[[], dict[str, str]]) -> dict[str, str] | None:
    """A bucket's keys and ETags; None when the caller may not list it."""
    try:
        return listing()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("403", "AccessDenied"):
            return None
        raise


def _presigner(s3: Any, bucket: str) -> gallery_page.SrcFor:
    def presigned(key: str) -> str:
        params = {"Bucket": bucket, "Key": key}
        return s3.generate_presigned_url("get_object", Params=params, ExpiresIn=PRESIGN_EXPIRY_S)

    return presigned


def _local_name(key: str, folders: frozenset[str] = frozenset()) -> str:
    """The key as a relative path, unless it would leave the folder (S3 keys may hold
    `..`, empty segments or a leading `/`), has a segment longer than a file name may be,
    or is also another key's folder (`folders`): such a key gets a name from its digest."""
    parts = key.split("/")
    if key not in folders and all(_fits(part) for part in parts):
        return key
    suffix = PurePosixPath(key).suffix
    suffix = suffix if _fits(suffix) and len(suffix) <= SUFFIX_MAX else ""
    return f"unsafe-keys/{hashlib.sha256(key.encode()).hexdigest()[:24]}{suffix}"


def _fits(part: str) -> bool:
    return part not in ("", ".", "..") and len(part.encode()) <= NAME_MAX


def _folders(keys: Iterable[str]) -> frozenset[str]:
    return frozenset(
        key.rsplit("/", depth)[0] for key in keys for depth in range(1, key.count("/") + 1)
    )


# What one copy is of: bucket, key, listed ETag, the CDN to fetch it through (or S3).
_Wanted = tuple[str, str, str | None, str | None]


class _Copies:
    """Local copies of the objects the page links to: links first, then one parallel fetch
    of those not already here with the same content (their MD5 is the listed ETag)."""

    def __init__(self, s3: Any, out_dir: Path) -> None:
        self._s3 = s3
        self._out_dir = out_dir
        self._wanted: dict[Path, _Wanted] = {}

    def link(
        self, bucket: str, folder: str, etags: dict[str, str] | None, via: str | None = None
    ) -> gallery_page.SrcFor:
        """Links to copies of `bucket`'s objects, fetched from S3 or through the CDN `via`."""

        folders = _folders(etags or {})

        def local(key: str) -> str:
            relative = f"{folder}/{_local_name(key, folders)}"
            self._wanted[self._out_dir / relative] = (bucket, key, (etags or {}).get(key), via)
            return quote(relative)

        return local

    def fetch(self) -> int:
        """Fetch what is missing or changed; how many objects that was."""
        stale = [item for item in self._wanted.items() if not _current(*item)]
        with ThreadPoolExecutor(max_workers=PARALLEL_DOWNLOADS) as pool:
            list(pool.map(self._fetch_one, stale))
        return len(stale)

    def _fetch_one(self, wanted: tuple[Path, _Wanted]) -> None:
        path, (bucket, key, _etag, via) = wanted
        body = _through_cdn(via, key) if via else self._from_s3(bucket, key)
        if body is None:
            return  # gone since the listing: the page shows the image as broken
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    def _from_s3(self, bucket: str, key: str) -> bytes | None:
        try:
            return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None


def _through_cdn(cdn: str, key: str) -> bytes | None:
    """The object as the CDN serves it; a key that names its format passes the CDN's
    function untouched, so these are the bytes the CDN's `<picture>` would load."""
    try:
        with urllib.request.urlopen(markup.object_url(cdn, key), timeout=CDN_TIMEOUT_S) as reply:
            return reply.read()
    except urllib.error.HTTPError as error:
        if error.code in (403, 404):  # CloudFront answers a missing key with 403
            return None
        raise


def _current(path: Path, wanted: _Wanted) -> bool:
    """Whether the copy at `path` has the listed content. A multipart upload's ETag is not
    an MD5, so such an object is fetched again every time: slower, never stale."""
    etag = wanted[2]
    if etag is None or not path.is_file():
        return False
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest() == etag.strip('"')
