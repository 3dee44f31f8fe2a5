"""Live figures: a results table, a counter, or competing estimates of one quantity, kept at
the top of a story and changed in place through the night.

A block's figures are checked and completed here (shares computed from counts, a source for
every value, totals that add up), rendered once per change to the HTML every surface shows
(a table, readable as one, with CSS bars drawn from `<meter>`), and written with their
`block.updated` event in the caller's transaction. Every version is kept: the history a
reader can open, and the earlier value a correction shows. Who may do what is in `posting`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, Final, Literal

from markupsafe import Markup
from sqlalchemy import Connection, Row, select, update

from ..accounts.users import User
from ..errors import Invalid
from ..schema import figure_blocks, figure_revisions, users
from ..times import iso
from ..times import now as utc_now
from ..vocabulary import BLOCK_DELETED, BLOCK_UPDATED
from . import events

BlockKind = Literal["results", "counter", "comparison"]
BLOCK_KINDS: Final[tuple[BlockKind, ...]] = ("results", "counter", "comparison")
MAX_ROWS: Final = 50
MAX_COMPARED: Final = 12  # competing estimates of one quantity
MAX_BLOCKS: Final = 10  # on one story
MAX_COUNT: Final = 10**13
SHARE_SLACK: Final = 0.5  # points a total of given shares may be over 100 (rounding)
SHARE_WARNING: Final = 2.0  # points under 100 from which the desk is asked to confirm
HISTORY_SHOWN: Final = 12  # versions in the block's own history list


@dataclass(frozen=True)
class Checked:
    """A block's figures as stored (`data`), and what the desk should confirm first."""

    data: dict[str, Any]
    warnings: list[str]


def check(kind: BlockKind, figures: dict[str, Any], now: datetime | None = None) -> Checked:
    """Validate and complete a block's figures (rows of label, count, share, source,
    reported_at); `Invalid` says what is wrong, in words the desk can show."""
    now = now or utc_now()
    rows: list[dict[str, Any]] = [dict(row) for row in figures.get("rows", [])]
    source = (figures.get("source") or "").strip()
    reported = figures.get("reported_at") or now
    if reported > now + timedelta(minutes=5):
        raise Invalid("reported_at: a figure cannot be reported in the future")
    if not rows:
        raise Invalid("rows: a block needs at least one figure")
    labels = [" ".join(str(row.get("label", "")).split()) for row in rows]
    if any(not label for label in labels):
        raise Invalid("rows: every figure needs a label (a candidate, a party, a source)")
    if len({label.casefold() for label in labels}) != len(labels):
        raise Invalid("rows: two figures have the same label")
    if kind == "counter" and len(rows) != 1:
        raise Invalid("rows: a counter has exactly one figure")
    if kind == "comparison" and not 2 <= len(rows) <= MAX_COMPARED:
        raise Invalid(f"rows: a comparison sets 2 to {MAX_COMPARED} estimates side by side")
    if len(rows) > MAX_ROWS:
        raise Invalid(f"rows: at most {MAX_ROWS} figures in a block")
    warnings: list[str] = []
    for row, label in zip(rows, labels, strict=True):
        row["label"] = label
        row["source"] = " ".join(str(row.get("source") or "").split())
        if not (row["source"] or source):
            raise Invalid(f"source: say where the figure for {label} comes from (the block's source, or the row's)")
        at = row.get("reported_at")
        if at is not None and at > now + timedelta(minutes=5):
            raise Invalid(f"reported_at: the figure for {label} cannot be reported in the future")
        row["reported_at"] = iso(at) if at is not None else None
        count, share = row.get("count"), row.get("share")
        if count is not None and not 0 <= count <= MAX_COUNT:
            raise Invalid(f"count: the figure for {label} must be between 0 and {MAX_COUNT:,}")
        if share is not None and not 0 <= share <= 100:
            raise Invalid(f"share: the share of {label} must be between 0 and 100 %")
        if kind != "results" and count is None:
            raise Invalid(f"count: give the figure for {label}")
    if kind == "results":
        warnings += _complete_shares(rows)
    data = {
        "unit": " ".join(str(figures.get("unit") or "").split()),
        "counted": " ".join(str(figures.get("counted") or "").split()),
        "source": source,
        "reported_at": iso(reported),
        "rows": [{k: row.get(k) for k in ("label", "count", "share", "source", "reported_at")} for row in rows],
    }
    return Checked(data, warnings)


def _complete_shares(rows: list[dict[str, Any]]) -> list[str]:
    """Shares from counts where every row has one; otherwise every row gives its share, and
    their total must be possible (a total well short of 100 % is for the desk to confirm)."""
    counts = [row.get("count") for row in rows]
    if all(c is not None for c in counts):
        total = sum(counts)  # type: ignore[arg-type]
        for row in rows:
            row["share"] = round(100 * row["count"] / total, 1) if total else 0.0
        return []
    if any(c is not None for c in counts):
        raise Invalid("count: give a count for every row, or shares only (shares are computed from counts)")
    if any(row.get("share") is None for row in rows):
        raise Invalid("share: give each row its share, or every row its count")
    total = round(sum(row["share"] for row in rows), 1)
    if total > 100 + SHARE_SLACK:
        raise Invalid(f"share: the shares add up to {total:g} %, more than 100 %")
    if total < 100 - SHARE_WARNING:
        return [f"The shares add up to {total:g} %, not 100 %: is a row missing, or is the rest 'others'?"]
    return []


# --- storing ---------------------------------------------------------------------------------


def _select() -> Any:
    return select(figure_blocks)


def get_block(conn: Connection, story_id: int, block_id: int) -> Row[Any] | None:
    return conn.execute(_select().where(figure_blocks.c.id == block_id, figure_blocks.c.story_id == story_id,
                                        figure_blocks.c.deleted_at.is_(None))).first()


def list_blocks(conn: Connection, story_id: int) -> list[Row[Any]]:
    """A story's blocks in the order they were made (the first is the one readers see first)."""
    query = _select().where(figure_blocks.c.story_id == story_id, figure_blocks.c.deleted_at.is_(None))
    return list(conn.execute(query.order_by(figure_blocks.c.id)))


def count_blocks(conn: Connection, story_id: int) -> int:
    return len(list_blocks(conn, story_id))


def revisions(conn: Connection, block_id: int, limit: int | None = None) -> list[Row[Any]]:
    """A block's versions, newest first, with who made each."""
    query = (
        select(figure_revisions, users.c.username)
        .join(users, users.c.id == figure_revisions.c.edited_by)
        .where(figure_revisions.c.block_id == block_id)
        .order_by(figure_revisions.c.revision.desc())
    )
    return list(conn.execute(query if limit is None else query.limit(limit)))


def create_block(conn: Connection, story: Row[Any], user: User, kind: BlockKind, title: str, checked: Checked,
                 key_event: bool = False) -> dict[str, Any]:
    now = utc_now()
    data = json.dumps(checked.data, ensure_ascii=False)
    block_id = conn.execute(
        figure_blocks.insert().values(
            story_id=story.id, kind=kind, title=title, data=data, html="", revision=1, key_event=key_event,
            created_at=now, updated_at=now,
        ).returning(figure_blocks.c.id)
    ).scalar_one()
    _keep(conn, block_id, 1, data, "", user, now)
    return _publish(conn, story, block_id, now, checked.warnings)


def update_block(conn: Connection, story: Row[Any], block: Row[Any], user: User, *, title: str | None = None,
                 checked: Checked | None = None, key_event: bool | None = None,
                 correction: str = "") -> dict[str, Any]:
    """A new version of the figures (or a correction of the last one), a new title, or the
    key-event mark; unchanged, nothing is written."""
    now = utc_now()
    values: dict[str, Any] = {}
    if title is not None and title != block.title:
        values["title"] = title
    if key_event is not None and key_event != block.key_event:
        values["key_event"] = key_event
    data = json.dumps(checked.data, ensure_ascii=False) if checked else block.data
    figures_changed = data != block.data
    if correction and not figures_changed:
        raise Invalid("correction: a correction changes a figure; change the wrong one and say what was wrong")
    if not values and not figures_changed:
        return block_json(block, story.slug)
    if figures_changed:
        values.update(data=data, revision=block.revision + 1)
        _keep(conn, block.id, block.revision + 1, data, correction, user, now)
    conn.execute(update(figure_blocks).where(figure_blocks.c.id == block.id).values(updated_at=now, **values))
    return _publish(conn, story, block.id, now, checked.warnings if checked else [])


def delete_block(conn: Connection, story: Row[Any], block: Row[Any]) -> None:
    now = utc_now()
    conn.execute(update(figure_blocks).where(figure_blocks.c.id == block.id).values(deleted_at=now, updated_at=now))
    events.append(conn, story.id, BLOCK_DELETED, {"id": block.id, "story": story.slug, "deleted_at": iso(now)}, now)


def _keep(conn: Connection, block_id: int, revision: int, data: str, correction: str, user: User,
          at: datetime) -> None:
    conn.execute(figure_revisions.insert().values(
        block_id=block_id, revision=revision, data=data, correction=correction, edited_by=user.id, edited_at=at))


def _publish(conn: Connection, story: Row[Any], block_id: int, now: datetime, warnings: list[str]) -> dict[str, Any]:
    """Render the block as it now stands, store that, and tell every reader."""
    block = conn.execute(_select().where(figure_blocks.c.id == block_id)).one()
    history = revisions(conn, block_id, HISTORY_SHOWN)
    html = render(block, history)
    conn.execute(update(figure_blocks).where(figure_blocks.c.id == block_id).values(html=html))
    block = conn.execute(_select().where(figure_blocks.c.id == block_id)).one()
    data = block_json(block, story.slug)
    events.append(conn, story.id, BLOCK_UPDATED, data, now)
    return {**data, "warnings": warnings}


def block_json(block: Row[Any], story_slug: str) -> dict[str, Any]:
    """The one shape of a block: the API answers with it, the event carries it."""
    data: dict[str, Any] = json.loads(block.data)
    return {
        "id": block.id, "story": story_slug, "kind": block.kind, "title": block.title, **data,
        "key_event": block.key_event, "revision": block.revision,
        "created_at": iso(block.created_at), "updated_at": iso(block.updated_at), "html": block.html,
        "etag": f'"b{block.id}.{block.revision}.{int(block.updated_at.timestamp() * 1000)}"',
    }


def revision_json(row: Row[Any]) -> dict[str, Any]:
    return {"revision": row.revision, **json.loads(row.data), "correction": row.correction,
            "edited_by": row.username, "edited_at": iso(row.edited_at)}


# --- the block as readers see it --------------------------------------------------------------


def _number(value: float | int | None) -> str:
    if value is None:
        return "\u2013"  # an en dash: no figure
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def _change(now: float | None, before: float | None, points: bool) -> str:
    if now is None or before is None or now == before:
        return ""
    delta = now - before
    sign = "+" if delta > 0 else "\u2212"  # a minus sign, as wide as the plus
    text = f"{abs(delta):.1f} pts" if points else f"{abs(delta):,}"
    return f"{sign}{text}"


def _when(moment: str) -> str:
    """A stored time in words: "6 Dec 2026, 02:10 UTC"."""
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).strftime("%-d %b %Y, %H:%M UTC")


def _time(moment: str) -> Markup:
    return Markup('<time datetime="{}">{}</time>').format(moment, _when(moment))


def summary(data: dict[str, Any], kind: str) -> str:
    """The figures as one line of text: history lists, corrections, notifications, feeds."""
    parts = []
    for row in data["rows"]:
        value = _number(row.get("count")) if row.get("count") is not None else ""
        if kind == "results" and row.get("share") is not None:
            value = f"{row['share']:.1f} %" + (f" ({value})" if value else "")
        parts.append(f"{row['label']} {value}".strip())
    return "; ".join(parts)


def as_text(block: Any) -> str:
    """The latest figures of a block in plain words, for readers of text: feeds and the
    page's structured data. "Turnout: Votes cast 1,204,311. 61 % of ballots counted.
    Source: Electoral commission, 6 Dec 2026, 02:10 UTC.\""""
    data = json.loads(block.data)
    if block.kind == "comparison":  # each estimate with whoever gave it
        lines = "; ".join(f"{row['label']} {_number(row.get('count'))} ({row['source'] or data['source']})"
                          for row in data["rows"])
    else:
        lines = summary(data, block.kind)
    parts = [f"{block.title}: {lines}."]
    if data["counted"]:
        parts.append(data["counted"].rstrip(".") + ".")
    parts.append(f"Source: {data['source'] or 'as given for each figure'}, {_when(data['reported_at'])}.")
    return " ".join(parts)


def _lead(data: dict[str, Any], kind: str, shown: int = 2) -> str:
    """The leading figures on one line, for the folded block: the first rows, as given."""
    rows = data["rows"]
    parts = []
    for row in rows[:shown]:
        if kind == "results" and row.get("share") is not None:
            value = f"{row['share']:.1f}\u00a0%"
        else:
            value = _number(row.get("count"))
        # A figure never wraps away from its name: lines break only between figures.
        parts.append(f"{row['label']}\u00a0{value}")
    more = f" · {len(rows) - shown} more" if len(rows) > shown else ""
    return " · ".join(parts) + more


def preview(kind: BlockKind, title: str, checked: Checked) -> str:
    """The HTML a block not yet saved would have (the desk's check)."""
    draft = SimpleNamespace(id=0, kind=kind, title=" ".join(title.split()), data=json.dumps(checked.data))
    return render(draft, [])


def render(block: Any, history: list[Any]) -> str:
    """The block as HTML. Every piece of text is escaped: nothing a desk types is markup."""
    data = json.loads(block.data)
    previous = json.loads(history[1].data) if len(history) > 1 else None
    before = {row["label"]: row for row in previous["rows"]} if previous else {}
    kind = block.kind
    unit = data["unit"] or ("votes" if kind == "results" else "")
    anchor = f"block-{block.id}"
    rows = data["rows"]
    # Columns with nothing in them are left out: results given as shares have no counts,
    # and a first version has no change to show.
    counts = kind != "results" or any(row.get("count") is not None for row in rows)
    changes = previous is not None
    out = [Markup('<section class="figures figures-{}" id="{}" data-id="{}" aria-labelledby="{}-title">').format(
        kind, anchor, block.id, anchor)]
    # Folded on a phone to its title and leading figures (the stream's newest update stays on
    # the first screen); always open on a wide screen (CSS), and a tap away everywhere.
    out.append(Markup('<details class="figures-fold"><summary><h2 id="{}-title" dir="auto">{}</h2>'
                      '<span class="figures-lead" dir="auto">{}</span></summary>').format(
        anchor, block.title, _lead(data, kind)))
    if data["counted"]:
        out.append(Markup('<p class="figures-counted">{}</p>').format(data["counted"]))
    count_head = unit.capitalize() or ("Figure" if kind == "comparison" else "Count")
    head = [{"results": "Name", "counter": "What", "comparison": "Estimate"}[kind]]
    head += [count_head] * counts + ["Share"] * (kind == "results") + ["Source"] * (kind == "comparison")
    head += ["Change"] * changes
    out.append(Markup('<table class="figures-table"><caption class="visually-hidden">{}</caption><thead><tr>')
               .format(block.title))
    out.extend(Markup('<th scope="col">{}</th>').format(name) for name in head)
    out.append(Markup("</tr></thead><tbody>"))
    largest = max((row.get("count") or 0 for row in rows), default=0) or 1
    for row in rows:
        old = before.get(row["label"], {})
        out.append(Markup('<tr><th scope="row" dir="auto">{}</th>').format(row["label"]))
        if kind == "comparison":  # bars to compare the estimates by, the largest full
            out.append(Markup('<td class="figures-count"><meter min="0" max="{}" value="{}" aria-hidden="true">'
                              '</meter> {}</td>').format(largest, row.get("count") or 0, _number(row.get("count"))))
            when = Markup(", ") + _time(row["reported_at"]) if row.get("reported_at") else ""
            out.append(Markup('<td class="figures-reported">{}{}</td>').format(row["source"] or data["source"], when))
        elif counts:
            out.append(Markup('<td class="figures-count">{}</td>').format(_number(row.get("count"))))
        if kind == "results":
            share = f"{row.get('share') or 0.0:.1f}"
            out.append(Markup('<td class="figures-share"><meter min="0" max="100" value="{}" aria-hidden="true">'
                              '</meter> {} %</td>').format(share, share))
            change = _change(row.get("share"), old.get("share"), points=True)
        else:
            change = _change(row.get("count"), old.get("count"), points=False)
        if changes:
            out.append(Markup('<td class="figures-change">{}</td>').format(change))
        out.append(Markup("</tr>"))
    out.append(Markup("</tbody></table>"))
    out.append(Markup('<p class="figures-source">Source: {}, {}</p>').format(
        data["source"] or "as given for each figure", _time(data["reported_at"])))
    latest = history[0] if history else None
    if latest is not None and latest.correction and previous is not None:
        out.append(Markup('<p class="correction"><strong>Correction</strong>, {}: {} Earlier: {}.</p>').format(
            _time(iso(latest.edited_at)), latest.correction, summary(previous, kind)))
    if len(history) > 1:
        out.append(Markup('<details class="figures-history"><summary>How the figures changed</summary><ol>'))
        for version in history:
            figures = json.loads(version.data)
            note = Markup(" <em>(correction)</em>") if version.correction else ""
            out.append(Markup("<li>{}{}: {}</li>").format(_time(figures["reported_at"]), note, summary(figures, kind)))
        out.append(Markup("</ol></details>"))
    out.append(Markup("</details></section>"))
    return str(Markup("").join(out))
