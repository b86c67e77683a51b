"""One owner per output key: claim before writing, clean up after the item changes.

Each output key has an owner record (records.py) naming the source key whose renditions
live there. An upload claims every key it will write before it writes any, so it can never
overwrite another source's rendition; a key goes back to nobody when its owner's item stops
listing it (overwritten by a failed upload, a profile with other keys, a delete).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import Any

from lambda_pkg.metadata import TIMESTAMP_FORMAT, MetadataStore, Source, listed_keys, newer_than
from lambda_pkg.profiles import OUTPUT_PREFIX
from lambda_pkg.records import current_owner, released_mark

logger = logging.getLogger("imgpipe")

# Lambda's longest timeout plus a margin: a claim this old whose owner never listed the key
# was left by an invocation that died between claiming and storing its item.
ABANDONED_CLAIM_AGE = dt.timedelta(minutes=20)


class OutputKeyTaken(Exception):
    """Another source owns an output key this upload would write. A retry cannot help."""

    def __init__(self, output_key: str, owner: str, template: str = "the key template") -> None:
        super().__init__(
            f"output key {output_key!r} already holds the rendition of {owner!r}, and one key "
            f"has one owner: nothing was written over it. Two sources map to the same key "
            f"because {template} drops the folder ({{name}}, {{stem}}); use one that keeps it "
            f"({{path}}, {{dir}}{{name}} or {{key}}), or give the files distinct names. Once "
            f"{owner!r} is deleted or its renditions move, `imgpipe reprocess` gives the key "
            "to this image"
        )
        self.output_key = output_key
        self.owner = owner

    def naming(self, template: str) -> OutputKeyTaken:
        """The same conflict, its reason naming the template that made the key."""
        return OutputKeyTaken(self.output_key, self.owner, template)


class NewerEventClaimed(Exception):
    """A newer event of the same source holds an output key: it will write the result, and
    this older event must write nothing (it would put older pixels over newer ones)."""


def claim_all(store: MetadataStore, output_keys: Iterable[str], source: Source) -> None:
    """Own every key before writing any; raises OutputKeyTaken naming the first conflict.
    Keys claimed before the conflict are released when the failed item is stored."""
    for output_key in output_keys:
        other = store.claim(output_key, source)
        if other is None:
            continue
        if other["owner"] == source.key:
            raise NewerEventClaimed(output_key)
        if _abandoned(store, other) and store.take_over(output_key, source, other):
            logger.warning("Took over %r from %r: its claim was abandoned", output_key, other)
            continue
        raise OutputKeyTaken(output_key, other["owner"])


def _abandoned(store: MetadataStore, record: dict[str, Any]) -> bool:
    """An owner whose item lists the key is live; so is one that claimed it recently (it may
    still be rendering). Only an old claim its owner never listed is abandoned."""
    if record["output_key"] in listed_keys(store.item(record["owner"])):
        return False
    claimed = dt.datetime.strptime(record["claimed_at"], TIMESTAMP_FORMAT)
    age = dt.datetime.now(dt.UTC) - claimed.replace(tzinfo=dt.UTC)
    return age > ABANDONED_CLAIM_AGE


def remove_unlisted(
    s3: Any,
    bucket: str,
    store: MetadataStore,
    source: Source,
    output_keys: Iterable[str],
    rewrite: Callable[[set[str]], None],
) -> int:
    """Delete the renditions at `output_keys` that `source` owns, then release the keys.

    A key another source owns now is left alone. The object goes before the claim: while
    the claim stands, no other source can write there. When the release is refused because
    a newer event of the same source claimed the key meanwhile (and may have written it
    before our delete), `rewrite` puts the current object's rendition back. A key this
    source released that nobody claimed since can only hold what an older event of this
    source wrote after the release: that goes too. Returns how many renditions were
    deleted."""
    removed, contested = 0, set()
    for output_key in sorted(set(output_keys)):
        if not output_key.startswith(OUTPUT_PREFIX):
            continue  # the item is data: it must never steer a delete elsewhere
        record = store.owner_record(output_key)
        mine = record is None or current_owner(record) == source.key  # None: made before
        left = record is not None and record.get("owner") == released_mark(source.key)
        if not (mine or left) or newer_than(record, source.sequencer):
            continue  # another source's, or a newer event of this source is writing it
        s3.delete_object(Bucket=bucket, Key=output_key)
        removed += 1
        if mine and record is not None and not store.release(output_key, source):
            contested.add(output_key)
    if contested:
        rewrite(contested)
    return removed
