"""Where uploaded photos are kept: a folder, or the database (`DATELINE_MEDIA_STORE`).

`photos.process` makes an upload's variants; a store keeps them, and the upload is answered
only once it has. Names are content hashes, so a variant once stored never changes: storing
it again is a no-op, and whoever serves it may cache it forever.

- `FolderStore`: files in `DATELINE_MEDIA_DIR`, served by the `/media` static files. Several
  nodes need that folder shared (NFS and the like).
- `DatabaseStore`: rows of the `media` table, in one transaction per upload. Every node
  serves every photo, and the database's backup holds them. Served through `MediaCache`.

See docs/media.md.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from ..config import Settings
from ..db import Database
from ..schema import media
from ..times import now
from .photos import CONTENT_TYPES, MAGIC, VARIANT_NAME, Variant

CACHE_BYTES = 32 * 1024 * 1024  # of photos kept in memory by each server process
IMPORT_BATCH_BYTES = 32 * 1024 * 1024  # read from the folder and written per transaction
_MAGIC_OF = {"jpg": next(m for m, kind in MAGIC.items() if kind == "JPEG"),
             "png": next(m for m, kind in MAGIC.items() if kind == "PNG")}


class MediaStore(Protocol):
    def save(self, variants: Sequence[Variant]) -> None:
        """Keep every variant (those already kept stay as they are); durable on return."""


class FolderStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save(self, variants: Sequence[Variant]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for variant in variants:
            target = self.folder / variant.name
            if not target.exists():
                _write_atomically(target, variant.data)

    def read(self, name: str) -> Variant | None:
        """The valid photo file `name`, or None for a missing, misnamed or foreign file."""
        match = VARIANT_NAME.fullmatch(name)
        if match is None:
            return None
        try:
            data = (self.folder / name).read_bytes()
        except FileNotFoundError:
            return None
        if not data.startswith(_MAGIC_OF[match[1]]):
            return None
        return Variant(name, CONTENT_TYPES[match[1]], data)

    def names(self) -> list[str]:
        """The photo files of the folder, by name (none if there is no folder yet)."""
        if not self.folder.is_dir():
            return []
        return sorted(entry.name for entry in os.scandir(self.folder)
                      if VARIANT_NAME.fullmatch(entry.name) and entry.is_file())


def _write_atomically(target: Path, data: bytes) -> None:
    """Readers see the whole file or none: two nodes writing the same photo to a shared
    folder at once each write their own partial file, and either one wins, whole."""
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        partial.write_bytes(data)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


class DatabaseStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, variants: Sequence[Variant]) -> None:
        """One transaction for all of them: an upload is stored whole or not at all."""
        if not variants:
            return
        with self.db.write() as conn:
            self.insert(conn, variants)

    def insert(self, conn: Connection, variants: Iterable[Variant]) -> None:
        dialect = sqlite if self.db.is_sqlite else postgresql
        created = now()
        rows = [{"name": v.name, "content_type": v.content_type, "data": v.data, "created_at": created}
                for v in variants]
        if rows:
            conn.execute(dialect.insert(media).on_conflict_do_nothing(index_elements=["name"]), rows)

    def read(self, name: str) -> Variant | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(media.c.content_type, media.c.data).where(media.c.name == name)
            ).first()
        return None if row is None else Variant(name, row.content_type, bytes(row.data))

    def existing(self, names: Sequence[str]) -> set[str]:
        """Which of `names` are stored already."""
        found: set[str] = set()
        with self.db.read() as conn:
            for at in range(0, len(names), 500):
                chunk = names[at:at + 500]
                found.update(conn.execute(select(media.c.name).where(media.c.name.in_(chunk))).scalars())
        return found


def store_for(settings: Settings, db: Database) -> FolderStore | DatabaseStore:
    """The store `DATELINE_MEDIA_STORE` names (`auto`: the database on PostgreSQL)."""
    return DatabaseStore(db) if settings.media_in_database else FolderStore(Path(settings.media_dir))


class MediaCache:
    """The photos served most recently, up to `max_bytes` of them: least recently served
    go first. Nothing is ever invalidated, since a name's bytes never change."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.size = 0  # bytes of photos held
        self._items: OrderedDict[str, Variant] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def get(self, name: str) -> Variant | None:
        with self._lock:
            variant = self._items.get(name)
            if variant is not None:
                self._items.move_to_end(name)
            return variant

    def put(self, variant: Variant) -> None:
        size = len(variant.data)
        if size > self.max_bytes:
            return  # served, never held: it would push out everything else
        with self._lock:
            if variant.name in self._items:
                self._items.move_to_end(variant.name)
                return
            self._items[variant.name] = variant
            self.size += size
            while self.size > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self.size -= len(dropped.data)


@dataclass
class Imported:
    copied: int = 0
    already: int = 0  # in the database before
    refused: list[str] = field(default_factory=list)  # named like a photo, but not one


def import_folder(folder: Path, db: Database) -> Imported:
    """Copy every photo file of `folder` into the database, but those already there: for a
    site moving from the folder store to the database (`dateline media import`)."""
    source, target = FolderStore(folder), DatabaseStore(db)
    names = source.names()
    already = target.existing(names)
    result = Imported(already=len(already))
    for batch in _batches(source, [n for n in names if n not in already], result):
        with db.write() as conn:
            target.insert(conn, batch)
        result.copied += len(batch)
    return result


def _batches(source: FolderStore, names: Sequence[str], result: Imported) -> Iterator[list[Variant]]:
    batch: list[Variant] = []
    size = 0
    for name in names:
        variant = source.read(name)
        if variant is None:
            result.refused.append(name)
            continue
        batch.append(variant)
        size += len(variant.data)
        if size >= IMPORT_BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
