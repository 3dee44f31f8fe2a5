"""The rules of a story's life: who may start or change a story, post, edit, approve,
delete, and notify readers, and what each kind of entry needs.

Every writer calls these, inside its own write transaction: the JSON API, the newsroom's
forms, the demo, a script or an importer. So a rule is checked once, here, and a refusal is
an exception from `errors` that each surface words its own way. `story` and `entries` below
only store; nothing else writes stories or entries.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from ..accounts.users import Role, User
from ..errors import Conflict, Invalid, NotAllowed, NotFound
from ..push import outbox
from ..times import now as utc_now
from ..vocabulary import (
    BODY_REQUIRED,
    EDITING,
    ENTRY_FLAGS,
    KIND_FIELDS,
    MAX_FACT,
    MAX_FACTS,
    REQUIRED_FIELDS,
    Audience,
    EntryKind,
    StoryStatus,
)
from . import entries, events, figures
from . import story as stories

# --- finding what a request names -----------------------------------------------------------


def find_story(conn: Connection, slug: str, audience: Audience) -> Row[Any]:
    found = stories.get_story(conn, slug, audience)
    if found is None:
        raise NotFound(f"No story with the slug {slug!r}.")
    return found


def find_entry(conn: Connection, story: Row[Any], entry_id: int, audience: Audience) -> Row[Any]:
    found = entries.get_entry(conn, story.id, entry_id, audience)
    if found is None:
        raise NotFound(f"Story {story.slug!r} has no entry {entry_id}.")
    return found


# --- stories --------------------------------------------------------------------------------


def clean_headline(text: str) -> str:
    """One line, no blank headlines: from a form or from JSON alike."""
    line = " ".join(text.split())
    if not line:
        raise Invalid("A story needs a headline.")
    return line


def start_story(
    conn: Connection, user: User, *, headline: str, slug: str | None = None, dateline: str = "",
    summary: str = "", status: StoryStatus = "draft", requires_approval: bool = False,
    starts_at: datetime | None = None,
) -> Row[Any]:
    user.require(Role.editor, "create stories")
    check_life(status, starts_at, "", Invalid)
    return stories.create_story(
        conn, headline=clean_headline(headline), slug=slug, dateline=" ".join(dateline.split()),
        summary=summary.strip(), status=status, requires_approval=requires_approval, starts_at=starts_at,
    )


def clean_facts(lines: list[str]) -> list[str]:
    """"What we know": one line a fact, blank lines dropped, within the limits readers' pages
    are laid out for."""
    facts = [" ".join(line.split()) for line in lines if line.strip()]
    if len(facts) > MAX_FACTS:
        raise Invalid(f"facts: at most {MAX_FACTS} lines in \"What we know\" (there are {len(facts)})")
    if long := [n for n, fact in enumerate(facts, 1) if len(fact) > MAX_FACT]:
        raise Invalid(f"facts: line {long[0]} is longer than {MAX_FACT} characters")
    return facts


def check_life(status: str, starts_at: datetime | None, closing_summary: str,
               refusal: type[Invalid] | type[Conflict] = Conflict) -> None:
    """A scheduled story says when its coverage begins; only an ended one has a closing
    summary. A change that clashes with the story as stored is a Conflict."""
    if status == "scheduled" and starts_at is None:
        raise refusal("starts_at: a scheduled story needs the time its coverage begins")
    if closing_summary and status != "ended":
        raise refusal("closing_summary: only an ended story has one (end it with status `ended`)")


def change_story(conn: Connection, user: User, story: Row[Any], changes: dict[str, Any]) -> Row[Any]:
    """Headline, dateline, summary, status (and with it the coverage's life), approval; a slug
    never changes (links are out)."""
    user.require(Role.editor, "change stories")
    if "slug" in changes and changes["slug"] != story.slug:
        raise Conflict("A story's slug cannot change: links to it are already out.")
    changes = {k: v for k, v in changes.items() if k != "slug"}
    if "headline" in changes:
        changes["headline"] = clean_headline(changes["headline"])
    if "dateline" in changes:
        changes["dateline"] = " ".join(changes["dateline"].split())
    if "summary" in changes:
        changes["summary"] = changes["summary"].strip()
    if "closing_summary" in changes:
        changes["closing_summary"] = changes["closing_summary"].strip()
    if "facts" in changes:
        changes["facts"] = clean_facts(changes["facts"])
    status = changes.get("status", story.status)
    check_life(status, changes.get("starts_at", story.starts_at),
               changes.get("closing_summary", story.closing_summary if status == "ended" else ""))
    return stories.update_story(conn, story, changes)


# --- entries --------------------------------------------------------------------------------


def _a(kind: EntryKind) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def check_kind(kind: EntryKind, body: str, fields: dict[str, str]) -> None:
    """What each kind of entry needs; `Invalid` (a ValueError) says what is missing."""
    stray = sorted(set(fields) - set(KIND_FIELDS[kind]))
    if stray:
        raise Invalid(f"{', '.join(stray)} does not apply to {_a(kind)} entry")
    if kind in BODY_REQUIRED and not body.strip():
        raise Invalid(f"{_a(kind)} entry needs a body")
    missing = [name for name in REQUIRED_FIELDS[kind] if not fields.get(name, "").strip()]
    if missing:
        raise Invalid(f"{_a(kind)} entry needs {' and '.join(missing)}")


def post_entry(
    conn: Connection, user: User, story: Row[Any], *, kind: EntryKind, body: str = "",
    fields: dict[str, str] | None = None, pinned: bool = False, key_event: bool = False,
    notify: bool = False, push_ttl_seconds: int = 21_600, published_at: datetime | None = None,
) -> dict[str, Any]:
    """Post an update: reporters and above; pinning and notifying need an editor. On a story
    that requires approval, a reporter's post waits (pending) for an editor."""
    fields = fields or {}
    if pinned:
        user.require(Role.editor, "pin entries")
    if notify:
        user.require(Role.editor, "notify readers")
    if story.status == "ended":
        raise Conflict("This story has ended; an editor can set it live again to post.")
    if notify and story.status != "live":
        raise Conflict("Only a live story's followers can be notified; set it live first.")
    check_kind(kind, body, fields)
    needs_approval = story.requires_approval and not user.can(Role.editor)
    data = entries.create_entry(
        conn, story, user, kind=kind, body=body, fields=fields, pinned=pinned, key_event=key_event,
        status="pending" if needs_approval else "published", published_at=published_at,
    )
    if notify:
        # In the same transaction as the entry: an acknowledged post is never left unsent.
        data["notification"] = outbox.enqueue(conn, story, data, push_ttl_seconds, utc_now())
    return data


def edit_entry(
    conn: Connection, user: User, story: Row[Any], entry: Row[Any], changes: dict[str, Any]
) -> dict[str, Any]:
    """Reporters edit their own entries, editors any; pinning needs an editor. Each change
    of content keeps a revision. On a story that requires approval, a reporter's edit of a
    published entry waits for an editor, as the post did: readers keep the approved copy."""
    if "pinned" in changes:
        user.require(Role.editor, "pin entries")
    if entry.author_id != user.id:
        user.require(Role.editor, "edit other people's entries")
    held = story.requires_approval and entry.status == "published" and not user.can(Role.editor)
    if held and changes.get("key_event", entry.key_event) != entry.key_event:
        raise NotAllowed("On a story that requires approval, an editor marks key events.")
    sent = {k: v for k, v in changes.items() if k not in ("body", *ENTRY_FLAGS)}
    if stray := sorted(set(sent) - set(KIND_FIELDS[entry.kind])):
        # A field that would be right for another entry: the request is well formed, it
        # conflicts with this entry's kind (which the request cannot know from the schema).
        raise Conflict(f"{', '.join(stray)} does not apply to this {entry.kind} entry")
    body, fields = entries.newsroom_content(entry)
    body = changes.get("body", body)
    fields = {**fields, **sent}
    check_kind(entry.kind, body, fields)
    if held:
        return entries.propose_edit(conn, story, entry, user, body, fields)
    return entries.update_entry(conn, story, entry, user, changes)


def delete_entry(conn: Connection, user: User, story: Row[Any], entry: Row[Any]) -> None:
    user.require(Role.editor, "delete entries")
    entries.delete_entry(conn, story, entry)


def find_deleted_entry(conn: Connection, story: Row[Any], entry_id: int) -> Row[Any]:
    found = entries.get_entry(conn, story.id, entry_id, Audience.newsroom, deleted=True)
    if found is None:
        if entries.get_entry(conn, story.id, entry_id, Audience.newsroom) is not None:
            raise Conflict("This update is not deleted: there is nothing to restore.")
        raise NotFound(f"Story {story.slug!r} has no entry {entry_id}.")
    return found


def restore_entry(conn: Connection, user: User, story: Row[Any], entry: Row[Any]) -> dict[str, Any]:
    """Undo a delete (editors, who may delete): the update is back in its place for readers."""
    user.require(Role.editor, "restore deleted entries")
    return entries.restore_entry(conn, story, entry)


def approve_entry(conn: Connection, user: User, story: Row[Any], entry: Row[Any]) -> dict[str, Any]:
    """Publish a reporter's pending post: readers get it now."""
    user.require(Role.editor, "approve posts")
    if entry.status != "pending" and entry.proposed_revision is None:
        raise Conflict("Nothing of this entry waits for approval: it is published as it stands.")
    return entries.approve_entry(conn, story, entry)


def announce_editing(conn: Connection, user: User, story: Row[Any], entry: Row[Any]) -> None:
    """Tell the newsroom that `user` has this entry open in the editor (for 30 s)."""
    data = {"id": entry.id, "user": user.username, "name": user.display_name, "seconds": 30}
    events.append(conn, story.id, EDITING, data, utc_now(), entry_id=entry.id)


# --- live figures -----------------------------------------------------------------------------


def find_block(conn: Connection, story: Row[Any], block_id: int) -> Row[Any]:
    found = figures.get_block(conn, story.id, block_id)
    if found is None:
        raise NotFound(f"Story {story.slug!r} has no figures block {block_id}.")
    return found


def _may_notify(user: User, story: Row[Any], notify: bool) -> None:
    if notify:
        user.require(Role.editor, "notify readers")
        if story.status != "live":
            raise Conflict("Only a live story's followers can be notified; set it live first.")


def add_block(
    conn: Connection, user: User, story: Row[Any], *, kind: figures.BlockKind, title: str,
    values: dict[str, Any], key_event: bool = False, notify: bool = False, push_ttl_seconds: int = 21_600,
) -> dict[str, Any]:
    """A new live figures block (editors): a results table, a counter, competing estimates."""
    user.require(Role.editor, "add live figures")
    if story.status == "ended":
        raise Conflict("This story has ended; an editor can set it live again to add figures.")
    _may_notify(user, story, notify)
    if figures.count_blocks(conn, story.id) >= figures.MAX_BLOCKS:
        raise Conflict(f"A story has at most {figures.MAX_BLOCKS} figures blocks; update or delete one.")
    checked = figures.check(kind, values)
    data = figures.create_block(conn, story, user, kind, clean_headline(title), checked, key_event)
    if notify:
        data["notification"] = outbox.enqueue_figures(
            conn, story, data, figures.summary(checked.data, kind), push_ttl_seconds, utc_now())
    return data


def change_block(
    conn: Connection, user: User, story: Row[Any], block: Row[Any], changes: dict[str, Any], *,
    notify: bool = False, push_ttl_seconds: int = 21_600,
) -> dict[str, Any]:
    """New figures, a correction of wrong ones, a new title or the key-event mark (editors).
    Figures not sent stay as they were; `rows`, when sent, replaces them all."""
    user.require(Role.editor, "change live figures")
    _may_notify(user, story, notify)
    stored = json.loads(block.data)
    figure_keys = ("unit", "counted", "source", "reported_at", "rows")
    checked = None
    if any(changes.get(k) is not None for k in figure_keys):
        values = {k: changes[k] if changes.get(k) is not None else stored[k] for k in figure_keys}
        if changes.get("rows") is None:
            values["rows"] = [_stored_row(row) for row in stored["rows"]]
        if changes.get("reported_at") is None:
            values["reported_at"] = None  # new figures are reported now, unless told otherwise
        checked = figures.check(block.kind, values)
    title = clean_headline(changes["title"]) if changes.get("title") is not None else None
    data = figures.update_block(conn, story, block, user, title=title, checked=checked,
                                key_event=changes.get("key_event"), correction=changes.get("correction") or "")
    if notify:
        line = figures.summary(checked.data if checked else stored, block.kind)
        data["notification"] = outbox.enqueue_figures(conn, story, data, line, push_ttl_seconds, utc_now())
    return data


def _stored_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row as stored, back in the shape `figures.check` takes (times as moments)."""
    at = row.get("reported_at")
    return {**row, "reported_at": datetime.fromisoformat(at.replace("Z", "+00:00")) if at else None}


def delete_block(conn: Connection, user: User, story: Row[Any], block: Row[Any]) -> None:
    user.require(Role.editor, "delete live figures")
    figures.delete_block(conn, story, block)
