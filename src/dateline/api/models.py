"""What the JSON API accepts and answers: pydantic models, with every limit in one place.

The limits are documented in docs/api.md; changing one here means changing it there.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    model_validator,
)
from pydantic.config import JsonValue

from ..accounts.users import USERNAME_REGEX, Role
from ..stories.posting import check_kind
from ..vocabulary import (
    ALL_KIND_FIELDS,
    BODY_REQUIRED,
    KIND_FIELDS,
    MAX_FACT,
    MAX_FACTS,
    MAX_SLUG,
    REQUIRED_FIELDS,
    SLUG_REGEX,
    EntryKind,
    EntryStatus,
    EventType,
    StoryStatus,
)

MAX_HEADLINE = 200
MAX_DATELINE = 80
MAX_SUMMARY = 2_000
MAX_BODY = 20_000
MAX_SHORT = 200  # speaker, role, credit
MAX_CAPTION = 1_000
MAX_URL = 2_048
MAX_PAGE = 100

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean_text(value: Any) -> Any:
    """Drop control characters (pasted from word processors; NUL breaks PostgreSQL)."""
    return _CONTROL.sub("", value).replace("\r\n", "\n") if isinstance(value, str) else value


def _clean_line(value: Any) -> Any:
    value = _clean_text(value)
    return " ".join(value.split()) if isinstance(value, str) else value


# The OpenAPI document states each rule below as a pattern on the value as sent, before the
# cleaning above; a value that matches it is one the server accepts. The character classes are
# spelled out (not \s) so that JSON Schema's regexes and Python's agree on them.
_SPACE = r"\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"  # str.split()
_CONTROLS = r"\x00-\x1f\x7f-\x9f"
FILLED_PATTERN = rf"[^{_SPACE}{_CONTROLS}]"  # something to read: not only spaces and controls
# Characters that NFKC turns into one of "/?#@:" (a fullwidth colon, "a/c", ...): in a host
# they disguise one address as another, and Python's URL parser refuses them.
_LOOKALIKES = (r"\u2047-\u2049\u2100\u2101\u2105\u2106\u2a74\ufe13\ufe16\ufe55\ufe56\ufe5f\ufe6b"
               r"\uff03\uff0f\uff1a\uff1f\uff20")
# No user name or password in a link (a classic phishing disguise), no spaces, a host name.
_WEB_URL = r"https?://[^{space}{controls}/?#@:\[\]\\{lookalikes}]+(?::[0-9]{{1,5}})?(?:[/?#][^{space}]*)?"
WEB_URL_PATTERN = "^" + _WEB_URL.format(space=_SPACE, controls=_CONTROLS, lookalikes=_LOOKALIKES) + "$"
# An image served by this site. Browsers read a backslash as a slash ("/" + "\\evil.example"
# loads another site's image) and ".." climbs out of the folder: no segment starts with a dot.
_LOCAL_IMAGE = r"/(?:media|static)(?:/[A-Za-z0-9_~%-][A-Za-z0-9._~%-]*)+"
IMAGE_URL_PATTERN = f"^(?:{_LOCAL_IMAGE}|{WEB_URL_PATTERN[1:-1]})$"
_web_url_re = re.compile(_WEB_URL.format(space=" ", controls="", lookalikes=_LOOKALIKES))
_local_image_re = re.compile(_LOCAL_IMAGE)


def _web_url(value: str) -> str:
    if not _web_url_re.fullmatch(value) or not urlsplit(value).hostname:
        raise ValueError("must be an http:// or https:// URL, without spaces or a user name")
    return value


def _moment(value: datetime) -> datetime:
    if not 2000 <= value.year <= 2099:  # the year as written, as the document's pattern says it
        raise ValueError("must be a time in the years 2000 to 2099")
    return value.astimezone(timezone.utc)


def _image_url(value: str) -> str:
    if value.startswith("/"):
        if not _local_image_re.fullmatch(value):
            raise ValueError("must be a plain path under /media/ or /static/")
        return value
    return _web_url(value)


Text = Annotated[str, BeforeValidator(_clean_text)]
Line = Annotated[str, BeforeValidator(_clean_line)]
FilledLine = Annotated[Line, Field(min_length=1, json_schema_extra={"pattern": FILLED_PATTERN})]
WebUrl = Annotated[Line, Field(max_length=MAX_URL, json_schema_extra={"pattern": WEB_URL_PATTERN}),
                   AfterValidator(_web_url)]
ImageUrl = Annotated[Line, Field(max_length=MAX_URL, json_schema_extra={"pattern": IMAGE_URL_PATTERN}),
                     AfterValidator(_image_url)]
Slug = Annotated[str, Field(min_length=1, max_length=MAX_SLUG, pattern=SLUG_REGEX)]
# A moment with its zone (2026-12-05T18:00:00+01:00), this century.
StartsAt = Annotated[AwareDatetime, Field(json_schema_extra={"pattern": r"^20[0-9]{2}-"}), AfterValidator(_moment)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# A scheduled story says when its coverage begins (StoryCreate; a PATCH is checked against
# the story as stored, and a clash is a 409).
_SCHEDULE_RULE: JsonValue = {
    "if": {"properties": {"status": {"const": "scheduled"}}, "required": ["status"]},
    "then": {"required": ["starts_at"], "properties": {"starts_at": {"type": "string"}}},
}


class StoryCreate(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"allOf": [_SCHEDULE_RULE], "examples": [
        {"headline": "Second night of protests after the disputed vote", "dateline": "DRAVONNE",
         "summary": "Thousands return to Lantern Square.", "status": "live"},
    ]})
    headline: Annotated[FilledLine, Field(max_length=MAX_HEADLINE)]
    slug: Slug | None = None
    dateline: Annotated[Line, Field(max_length=MAX_DATELINE)] = ""
    summary: Annotated[Text, Field(max_length=MAX_SUMMARY)] = ""
    status: StoryStatus = "draft"
    requires_approval: StrictBool = False
    starts_at: StartsAt | None = None


class StoryUpdate(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"status": "ended", "closing_summary": "The count resumes on Monday; this coverage ends here."},
        {"status": "live"},
    ]})
    headline: Annotated[FilledLine, Field(max_length=MAX_HEADLINE)] | None = None
    dateline: Annotated[Line, Field(max_length=MAX_DATELINE)] | None = None
    summary: Annotated[Text, Field(max_length=MAX_SUMMARY)] | None = None
    status: StoryStatus | None = None
    requires_approval: StrictBool | None = None
    starts_at: StartsAt | None = None
    closing_summary: Annotated[Text, Field(max_length=MAX_SUMMARY, description=(
        "What readers of an ended story read first; with `status: ended` or on an ended story."))] | None = None
    facts: Annotated[list[Annotated[FilledLine, Field(max_length=MAX_FACT)]], Field(max_length=MAX_FACTS, description=(
        "\"What we know\": the established facts, one plain-text line each, the whole list at once "
        "(`[]` clears it). Readers' pages change live with a `story.facts` event."))] | None = None


class Story(BaseModel):
    slug: str
    headline: str
    dateline: str
    summary: str
    status: StoryStatus = Field(description=(
        "draft (newsroom only), scheduled (public: coverage begins at `starts_at`), live, or ended "
        "(its readers' streams end and the page stops reconnecting; set `live` to reopen it)."))
    requires_approval: bool = Field(description="Reporters' posts wait for an editor's approval.")
    starts_at: str | None = Field(description="When a scheduled story's coverage is to begin.")
    coverage_started_at: str | None = Field(description="When the story first went live.")
    coverage_ended_at: str | None = Field(description="When the coverage ended; null unless ended.")
    closing_summary: str
    facts: list[str]
    facts_updated_at: str | None = Field(description="When \"What we know\" last changed.")
    created_at: str
    updated_at: str


class StoryList(BaseModel):
    stories: list[Story]


class _EntryFields(_Strict):
    body: Annotated[Text, Field(max_length=MAX_BODY)] | None = None
    speaker: Annotated[Line, Field(max_length=MAX_SHORT)] | None = None
    role: Annotated[Line, Field(max_length=MAX_SHORT)] | None = None
    image_url: ImageUrl | None = None
    caption: Annotated[Line, Field(max_length=MAX_CAPTION)] | None = None
    credit: Annotated[Line, Field(max_length=MAX_SHORT)] | None = None
    alt: Annotated[Line, Field(max_length=MAX_CAPTION)] | None = None
    url: WebUrl | None = None
    correction: Annotated[Line, Field(max_length=MAX_CAPTION)] | None = None
    pinned: StrictBool | None = None
    key_event: StrictBool | None = None

    def kind_fields(self) -> dict[str, str]:
        return {k: v for k in ALL_KIND_FIELDS if (v := getattr(self, k)) is not None}


_FILLED = {"type": "string", "pattern": FILLED_PATTERN}


def _kind_rules() -> list[JsonValue]:
    """Each kind's rules (`posting.check_kind`) as JSON Schema, for the OpenAPI document:
    what it needs, filled in, and which fields do not apply to it."""
    rules: list[JsonValue] = []
    for kind, own in KIND_FIELDS.items():
        needs = (["body"] if kind in BODY_REQUIRED else []) + list(REQUIRED_FIELDS[kind])
        when: dict[str, Any] = {"properties": {"kind": {"const": kind}}}
        if kind != "text":  # text is the default: it applies when `kind` is left out too
            when["required"] = ["kind"]
        stray = {name: {"type": "null"} for name in ALL_KIND_FIELDS if name not in own}
        then: dict[str, Any] = {
            "required": needs, "properties": {**{name: _FILLED for name in needs}, **stray},
        }
        rules.append({"if": when, "then": then})
    return rules


class EntryCreate(_EntryFields):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"allOf": _kind_rules(), "examples": [
        {"kind": "text", "body": "Riot police have sealed off **Unity Street**.", "key_event": True},
        {"kind": "quote", "body": "We will be back tomorrow.", "speaker": "Mira Solvane",
         "role": "opposition candidate"},
    ]})
    kind: EntryKind = "text"
    notify: StrictBool | None = Field(
        None, description="Send a browser notification to the followers of the story and of the site "
        "(editors; live stories).")

    @model_validator(mode="after")
    def _follows_its_kind(self) -> EntryCreate:
        check_kind(self.kind, self.body or "", self.kind_fields())
        return self


class EntryUpdate(_EntryFields):
    """Only the fields sent change; the kind of an entry cannot change."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"body": "Police now say **5,000** people attended."}, {"pinned": True},
    ]})


class Author(BaseModel):
    username: str
    name: str


class Entry(BaseModel):
    id: int
    story: str
    kind: EntryKind
    body: str
    html: str
    author: Author
    published_at: str
    updated_at: str
    revision: int
    etag: str = Field(description="The entry's validator, for `If-Match`; every change to the entry changes it.")
    pinned: bool
    key_event: bool
    status: EntryStatus = Field(description="pending: waiting for an editor's approval")
    edit_pending: bool | None = Field(
        None, description="Newsroom only: an edit waits for an editor's approval; the entry is shown as edited, "
        "readers still see the approved copy.")
    speaker: str | None = None
    role: str | None = None
    image_url: str | None = None
    caption: str | None = None
    credit: str | None = None
    alt: str | None = None
    url: str | None = None
    correction: str | None = Field(None, description="A public correction note shown under the update.")
    notification: int | None = Field(
        None, description="The notification queued for followers, when posted with `notify` "
        "(its progress: `GET /api/v1/stories/{slug}/notifications`).")


class EntryPage(BaseModel):
    entries: list[Entry]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next, older page; null at the end.")


class Revision(BaseModel):
    revision: int
    body: str
    fields: dict[str, str]
    edited_by: str
    edited_at: str


class RevisionList(BaseModel):
    revisions: list[Revision]


class Event(BaseModel):
    id: int
    type: EventType
    data: dict[str, Any]


class EventPage(BaseModel):
    events: list[Event]
    last_event_id: int = Field(description="Pass as `after` to continue.")
    has_more: bool


class UserCreate(_Strict):
    username: Annotated[str, Field(min_length=2, max_length=63, json_schema_extra={"pattern": USERNAME_REGEX})]
    role: Role
    name: Annotated[Line, Field(max_length=120)] | None = None
    password: Annotated[str, Field(min_length=10, max_length=1024)] | None = None


class UserUpdate(_Strict):
    role: Role | None = None
    name: Annotated[FilledLine, Field(max_length=120)] | None = None
    disabled: StrictBool | None = None


class UserOut(BaseModel):
    username: str
    name: str
    role: Role
    disabled: bool


class UserCreated(UserOut):
    password: str | None = Field(None, description="The generated password, shown this once.")


class UserList(BaseModel):
    users: list[UserOut]


class SignIn(_Strict):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class SessionOut(BaseModel):
    user: UserOut
    csrf_token: str = Field(description="Send as X-CSRF-Token with every unsafe request.")


class PasswordChange(_Strict):
    current_password: Annotated[str, Field(min_length=1, max_length=1024)]
    new_password: Annotated[str, Field(min_length=10, max_length=1024)]


class TokenOut(BaseModel):
    id: int = Field(description="Revoke it with `DELETE /api/v1/tokens/{id}` or `dateline token revoke ID`.")
    prefix: str = Field(description="The token's first characters, to recognise it by; never the token.")
    user: str
    label: str
    created_at: str
    last_used_at: str | None = Field(None, description="To the hour; null if never used.")
    revoked_at: str | None = None


class TokenList(BaseModel):
    tokens: list[TokenOut]


class Preview(BaseModel):
    html: str


class Upload(BaseModel):
    url: str = Field(description="Use as `image_url`.")
    srcset: str
    width: int
    height: int
