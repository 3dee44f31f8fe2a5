"""Every setting Dateline reads, declared once.

Each setting has a `DATELINE_*` environment variable, a default and a line of help.
A `*_FILE` variant (``DATELINE_DATABASE_URL_FILE=/run/secrets/db-url``) reads the value from
a file, for secrets such as a database password. `docs/configuration.md` lists the same table;
a test keeps them in step.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .vocabulary import BROKER_URL_SCHEMES, BROWSER_PUSH_SERVICES, MEDIA_STORES, BrokerKind, MediaStore

MAX_PHOTO_BYTES = 15 * 1024 * 1024  # the most stories/photos.py decodes a photo from


class ConfigError(ValueError):
    """A setting has a value Dateline cannot use."""


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(f"expected a positive whole number, got {value!r}")
    return number


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(f"expected 0 or more, got {value!r}")
    return number


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ValueError, ZoneInfoNotFoundError):
        raise ValueError(f"expected a time zone name such as Europe/Paris or UTC, got {value!r}") from None
    return value


def _setting(default: Any, help: str, cast: Callable[[str], Any] = str) -> Any:
    return field(default=default, metadata={"help": help, "cast": cast})


@dataclass(frozen=True)
class Settings:
    database_url: str = _setting(
        "sqlite:///dateline.db",
        "Database URL: `sqlite:///path.db` (the default, a file in the current folder) "
        "or `postgresql://user@host/dbname`.",
    )
    host: str = _setting("127.0.0.1", "Address `dateline serve` listens on.")
    port: int = _setting(8000, "Port `dateline serve` listens on.", _positive_int)
    public_url: str = _setting(
        "", "The site's public address (https://live.example.org), the base of every absolute link: "
        "canonical links, feeds, structured data, social cards, sitemaps, embeds. Empty: each "
        "request's own scheme and Host (`dateline serve` warns when it listens beyond loopback).",
    )
    embed_origins: str = _setting(
        "", "Sites whose pages may frame the embeds (`/stories/{slug}/embed`, `/teaser`), as origins "
        "comma-separated (https://www.example.org); `*` for any site. Empty: none but this one.",
    )
    site_name: str = _setting("Dateline", "Name shown in page titles and the masthead.")
    time_zone: str = _setting(
        "UTC", "The newsroom's time zone (an IANA name: Europe/Paris), in which pages give times to readers "
        "without JavaScript, the zone named; with scripts, each reader sees their own.", _time_zone,
    )
    max_request_bytes: int = _setting(
        1_048_576, "Largest request body accepted by the JSON API, in bytes (413 beyond).", _positive_int
    )
    max_upload_bytes: int = _setting(
        MAX_PHOTO_BYTES, f"Largest photo upload, in bytes (413 beyond); at most {MAX_PHOTO_BYTES}, the most a "
        "photo is decoded from.", _positive_int,
    )
    header_timeout_seconds: float = _setting(
        10.0, "Seconds a client has to send a request's head (request line and headers), from when it "
        "connects or starts the request; then 408 and the connection is closed.", float,
    )
    body_timeout_seconds: float = _setting(
        120.0, "Seconds a client has to send a request's body once its head is in (a 15 MB photo over a "
        "slow phone link takes a minute or two); then 408 and closed. Live streams send no body: never cut.",
        float,
    )
    max_half_open_per_address: int = _setting(
        32, "Slow connections one address (an IPv6 /64) may hold at once, per server process: still "
        "without a whole request a second after starting one (0: no limit); while it does, more are "
        "refused with 429 as they turn slow (those that send their request in time are served). "
        "Addresses trusted as proxies (`FORWARDED_ALLOW_IPS`, default 127.0.0.1) are exempt.", _non_negative_int,
    )
    page_size: int = _setting(20, "Updates per page on the reader page.", _positive_int)
    idempotency_ttl_hours: int = _setting(
        24, "How long an `Idempotency-Key` is remembered, in hours.", _positive_int
    )
    sqlite_synchronous: str = _setting(
        "FULL",
        "SQLite `synchronous` pragma. FULL (default) makes an acknowledged write survive a power cut; "
        "NORMAL survives a process crash only.",
    )
    log_level: str = _setting("info", "Log level: debug, info, warning or error.")
    session_idle_minutes: int = _setting(
        720, "A newsroom session ends after this many minutes without use.", _positive_int
    )
    session_max_hours: int = _setting(
        168, "A newsroom session ends this many hours after sign-in, used or not.", _positive_int
    )
    password_hash_slots: int = _setting(
        2, "Password checks (argon2id: 19 MiB and about 30 ms of a core each) run at once per "
        "server process; a few more wait, and sign-ins beyond those are answered 503 with Retry-After.",
        _positive_int,
    )
    media_dir: str = _setting(
        "media", "Folder where uploaded photos are stored when the media store is `folder` (served "
        "under /media/); several nodes may share it (NFS and the like).",
    )
    media_store: MediaStore = _setting(  # checked in validate()
        "auto", "Where uploaded photos are kept: `folder` (`DATELINE_MEDIA_DIR`), `database` (every node "
        "serves every photo, nothing else to share) or `auto`: the database on PostgreSQL, the folder on SQLite.",
    )
    push_test_endpoints: bool = _setting(
        False, "FOR TESTS ONLY: also accept http:// push endpoints on loopback.", _bool
    )
    push_contact: str = _setting(
        "", "Contact that push services may use about your notifications (VAPID `sub`): a "
        "`mailto:` or `https:` URL. Empty: the public URL, else `mailto:webmaster@localhost`.",
    )
    push_services: str = _setting(
        ", ".join(BROWSER_PUSH_SERVICES),
        "Push services that subscriptions may point at, comma-separated: the browsers' own "
        "(Chrome and most others, Firefox, Safari, Edge). `*.` matches subdomains; `*` alone "
        "allows any public https host.",
    )
    push_ttl_seconds: int = _setting(
        21_600, "How long a push service keeps a notification for a browser that is offline, in "
        "seconds (news goes stale).", _positive_int,
    )
    push_concurrency: int = _setting(
        16, "HTTP/1.1 connections (a request each at a time) to one push service, per server "
        "process. Over HTTP/2, as push services speak it, requests go as many at once as the "
        "service allows, on up to 16 connections of at most 128 each.", _positive_int
    )
    push_lease_seconds: int = _setting(
        30, "Seconds after which deliveries left in flight by a crashed process are sent by "
        "another.", _positive_int,
    )
    workers: int = _setting(
        0, "Server processes for `dateline serve`; 0 means one per CPU core.", _non_negative_int
    )
    listen_backlog: int = _setting(
        4096, "Connections the kernel holds for `dateline serve` before a process accepts them (Linux "
        "caps it at net.core.somaxconn). When a node goes down, its readers all come back at once: a "
        "connection the queue has no room for is dropped, and tried again only a second or more later.",
        _positive_int,
    )
    listen_reuseport: bool = _setting(
        True, "With several processes on Linux, give each its own listening socket (SO_REUSEPORT), "
        "so that each connection wakes one process, not all of them. A process that stops resets the "
        "connections still waiting in its own queue (unless net.ipv4.tcp_migrate_req is 1); readers "
        "come back at once, as after any dropped connection. 0: one socket shared by all.", _bool,
    )
    broker: str = _setting(  # checked in validate()
        "local",
        "How server processes learn of each other's new events: `local` (processes on one machine), "
        "`none` (the poll alone), `postgresql` (LISTEN/NOTIFY on the database), `redis://host:port/db` "
        "or `nats://host:port` (nodes on several machines).",
    )
    live_poll_seconds: float = _setting(
        1.0, "How often each process checks the event log and the push outbox even without a "
        "nudge, in seconds.", float
    )
    heartbeat_seconds: float = _setting(
        15.0, "Seconds between keep-alive comments on idle live streams.", float
    )
    max_streams: int = _setting(
        15_000, "Open live streams per process (at most the process's open-file limit less 256; "
        "`dateline serve` raises that limit to the system's maximum); more are told to retry later.", _positive_int
    )
    stream_buffer_bytes: int = _setting(
        262_144, "Bytes a live reader may fall behind before it is dropped (it reconnects and "
        "catches up).", _positive_int,
    )
    stream_stall_seconds: float = _setting(
        30.0, "A live reader catching up whose connection takes nothing for this many seconds is "
        "dropped (it reconnects later); one that reads slowly is served to the end.", float,
    )
    live_window_events: int = _setting(
        10_000, "Recent events each server process keeps in memory, over all stories, so that readers "
        "resuming after a short break (all of a lost node's readers at once) are replayed without a "
        "database query; 0 turns the window off.", _non_negative_int,
    )
    live_window_bytes: int = _setting(
        33_554_432, "Most memory the window of recent events may take, in bytes; the oldest events are "
        "let go first.", _non_negative_int,
    )
    event_retention_days: int = _setting(
        0, "Events older than this many days are deleted from the log (0: keep everything); "
        "readers resuming from before then reload the page.", _non_negative_int,
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = env_name(f.name)
            raw = env.get(name)
            file_path = env.get(name + "_FILE")
            if raw is None and file_path:
                try:
                    with open(file_path, encoding="utf-8") as handle:
                        raw = handle.read().strip()
                except OSError as exc:
                    raise ConfigError(f"{name}_FILE: cannot read {file_path}: {exc.strerror}") from None
            if raw is not None:
                try:
                    values[f.name] = f.metadata["cast"](raw)
                except ValueError as exc:
                    raise ConfigError(f"{name}: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.sqlite_synchronous.upper() not in {"FULL", "EXTRA", "NORMAL"}:
            raise ConfigError("DATELINE_SQLITE_SYNCHRONOUS: expected FULL, EXTRA or NORMAL")
        self.broker_kind  # noqa: B018 - raises ConfigError for a broker it cannot name
        if self.broker_kind == "postgresql" and not self.database_url.startswith("postgresql"):
            raise ConfigError("DATELINE_BROKER: `postgresql` needs DATELINE_DATABASE_URL on PostgreSQL")
        if self.media_store not in MEDIA_STORES:
            raise ConfigError(f"DATELINE_MEDIA_STORE: expected {', '.join(MEDIA_STORES[:-1])} or {MEDIA_STORES[-1]}")
        if not 0.05 <= self.live_poll_seconds <= 60:
            raise ConfigError("DATELINE_LIVE_POLL_SECONDS: expected 0.05 to 60")
        if not 1 <= self.heartbeat_seconds <= 300:
            raise ConfigError("DATELINE_HEARTBEAT_SECONDS: expected 1 to 300")
        if not 0.5 <= self.stream_stall_seconds <= 3600:
            raise ConfigError("DATELINE_STREAM_STALL_SECONDS: expected 0.5 to 3600")
        if self.max_upload_bytes > MAX_PHOTO_BYTES:
            raise ConfigError(f"DATELINE_MAX_UPLOAD_BYTES: expected at most {MAX_PHOTO_BYTES}")
        if not 0.5 <= self.header_timeout_seconds <= 600:
            raise ConfigError("DATELINE_HEADER_TIMEOUT_SECONDS: expected 0.5 to 600")
        if not 0.5 <= self.body_timeout_seconds <= 3600:
            raise ConfigError("DATELINE_BODY_TIMEOUT_SECONDS: expected 0.5 to 3600")
        if self.push_contact and not self.push_contact.startswith(("mailto:", "https://")):
            raise ConfigError("DATELINE_PUSH_CONTACT: expected a mailto: or https:// URL")
        if self.public_url:
            parts = urlsplit(self.public_url)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
                raise ConfigError("DATELINE_PUBLIC_URL: expected an address such as "
                                  f"https://live.example.org, got {self.public_url!r}")
        for origin in self.frame_origins:
            parts = urlsplit(origin)
            if origin != "*" and (parts.scheme not in ("http", "https") or not parts.hostname
                                  or parts.path or parts.query or parts.fragment or any(c in origin for c in " ;,'")):
                raise ConfigError("DATELINE_EMBED_ORIGINS: expected origins such as "
                                  f"https://www.example.org, got {origin!r}")
        if not self.database_url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ConfigError(
                "DATELINE_DATABASE_URL: expected a sqlite:/// or postgresql:// URL, "
                f"got {redact_url(self.database_url)!r}"
            )

    @property
    def broker_kind(self) -> BrokerKind:
        """`local`, `none`, `postgresql`, `redis` or `nats`, from the word or the URL's scheme."""
        return broker_kind(self.broker)

    @property
    def media_in_database(self) -> bool:
        if self.media_store == "auto":
            return self.database_url.startswith("postgresql")
        return self.media_store == "database"

    @property
    def frame_origins(self) -> tuple[str, ...]:
        """The origins of `DATELINE_EMBED_ORIGINS`, trailing slashes dropped."""
        return tuple(o.strip().rstrip("/") for o in self.embed_origins.split(",") if o.strip())

    @property
    def push_service_hosts(self) -> tuple[str, ...]:
        return tuple(host.strip().lower() for host in self.push_services.split(",") if host.strip())

    def dump(self) -> dict[str, str]:
        """Every setting with the database URL's password redacted, for `dateline config`."""
        shown: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            shown[env_name(f.name)] = redact_url(value) if f.name in {"database_url", "broker"} else str(value)
        return shown


def broker_kind(setting: str) -> BrokerKind:
    """What `DATELINE_BROKER` names; ConfigError for anything else (one line, the password hidden)."""
    word = setting.strip()
    if word in ("local", "none", "postgresql"):
        return word  # type: ignore[return-value]
    scheme, sep, _ = word.partition("://")
    kind = BROKER_URL_SCHEMES.get(scheme.lower()) if sep else None
    if kind is None or kind == "postgresql":
        raise ConfigError(
            f"DATELINE_BROKER: expected local, none, postgresql, redis://host:port/db or nats://host:port, "
            f"got {redact_url(word)!r}"
        )
    try:
        parts = urlsplit(word)
        parts.port  # noqa: B018 - ValueError for a port out of range or not a number
    except ValueError:
        parts = None
    if parts is None or not parts.hostname:
        raise ConfigError(f"DATELINE_BROKER: expected host:port in {redact_url(word)!r}")
    return kind


def env_name(field_name: str) -> str:
    return "DATELINE_" + field_name.upper()


def described_settings() -> list[tuple[str, str, str]]:
    """(variable, default, help) for every setting: the source of the docs table."""
    return [(env_name(f.name), str(f.default), f.metadata["help"]) for f in fields(Settings)]


def redact_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
