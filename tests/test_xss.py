"""A corpus of XSS payloads, put in every text field, comes out inert in the API's `html` and
on the reader pages; `svg` and `math` are never allowlisted.

For each payload of tests/data/xss_payloads.json (cut to each field's limit), one story
carries it in its headline, dateline and summary, and four entries carry it in every text
field they have: text body; quote body, speaker and role; image body, caption, credit and alt,
with the payload also in the image URL (an https URL's query, or a path on the site); embed
body, with the payload in the link's query. Then:

* each entry's `html`, as the API answers it, is parsed: only allowlisted elements and
  attributes, no event handler, no `style`, links and images only to web URLs (never
  javascript:, vbscript: or data:, however spelled), and the plain fields come back as text
  (the `cite` says exactly the speaker, the `alt` exactly the alt, ...);
* the story page, a permalink page and the front page are parsed: inside `<main>` no active
  or parser-changing element (script, svg, math, iframe, template, noscript, ...) but the
  page's own, no handler and no dangerous URL anywhere; the entries' html is on the page as the
  API gave it; the headline, dateline and summary are text, in `<main>` and in `<title>`;
* the payload as an image or embed URL is refused with 422; so are javascript:, data: and
  the like, spelled in many ways, on create and on edit;
* a handful of the corpus goes in again by edits (PATCH); the corpus in a 404 URL is text.

The HTML is read with the standard library's tokenizer (html.parser), which splits tags and
decodes entities the way a browser does in ordinary content. It differs from a browser inside
raw-text elements (title, textarea, xmp, noscript, ...), in foreign content (svg, math) and in
comments; so every one of those inside an entry or `<main>` is itself a failure here, and then
what this parser saw is what a browser sees. (Checked once against html5lib, the WHATWG
parser: the same elements, for every payload.) Checks are on parsed elements, attributes and
text, never on raw substrings: escaped text may rightly contain "javascript:" or "<script>".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
from fastapi.testclient import TestClient

from dateline.api.models import WEB_URL_PATTERN
from dateline.stories import markup

PAYLOADS: list[str] = json.loads((Path(__file__).parent / "data" / "xss_payloads.json").read_text("utf-8"))

# Field limits of api_models, by field.
LIMITS = {
    "headline": 200, "dateline": 80, "summary": 2_000, "body": 20_000, "speaker": 200, "role": 200,
    "caption": 1_000, "credit": 200, "alt": 1_000, "url": 2_048,
}  # fmt: skip

# What an entry's html may contain: the Markdown allowlist plus what render_html writes itself.
RENDER_TAGS = {"blockquote", "footer", "cite", "figure", "img", "figcaption", "span", "p", "a", "div", "button", "strong"}
ENTRY_TAGS = frozenset(markup.ALLOWED_TAGS | RENDER_TAGS)
RENDER_ATTRIBUTES = {
    "a": {"rel", "target", "class"},  # rel: nh3's link_rel; the embed card has all three
    "img": {"src", "alt", "loading", "decoding", "srcset", "sizes", "width", "height"},
    "blockquote": {"class"}, "figure": {"class"}, "span": {"class"}, "p": {"class"},
    "div": {"class", "data-player"}, "button": {"type", "class"},
}  # fmt: skip
ENTRY_ATTRIBUTES = {
    tag: set(markup.ALLOWED_ATTRIBUTES.get(tag, ())) | RENDER_ATTRIBUTES.get(tag, set()) for tag in ENTRY_TAGS
}

# Never inside <main>: active content, elements that change how the rest is parsed (raw text,
# foreign content), and elements that only belong in <head>.
FORBIDDEN_TAGS = frozenset(
    {
        "svg", "math", "script", "style", "iframe", "object", "embed", "form", "base", "meta",
        "link", "template", "noscript", "frame", "frameset", "applet", "textarea", "xmp",
        "plaintext", "noembed", "noframes", "title", "html", "head", "body", "foreignobject",
        "annotation-xml", "mglyph", "malignmark", "isindex", "portal",
    }
)  # fmt: skip
# ...except the page's own: the story page's template for updates that arrive live
# (static/live.js fills a copy of it; its content is static markup), and the search forms of
# the front page and the search page (GET to /search, static markup but the query's value),
# and the drawn bell of "Notify me" (a static path).
PAGE_OWN = frozenset({("template", "entry-template"), ("form", "site-search"), ("form", "search-form"),
                      ("svg", "notify-bell")})

URL_ATTRIBUTES = frozenset(
    {
        "href", "src", "action", "formaction", "xlink:href", "data", "poster", "background",
        "cite", "codebase", "longdesc", "lowsrc", "dynsrc", "ping", "srcset", "manifest", "icon",
    }
)  # fmt: skip
DANGEROUS_SCHEMES = ("javascript:", "vbscript:", "data:")
ENTRY_SCHEMES = markup.URL_SCHEMES  # http, https, mailto; anything else must be a relative URL
FORBIDDEN_ATTRIBUTES = frozenset({"style", "srcdoc"})

# Elements without an end tag (HTML's void elements).
VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr", "param", "keygen"}
)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --- parsing ------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class Element:
    tag: str
    attrs: list[tuple[str, str | None]]
    ancestors: tuple["Element", ...]
    texts: list[str] = field(default_factory=list)
    children: list["Element"] = field(default_factory=list)

    @property
    def text(self) -> str:
        """All text inside, entities decoded: what a reader sees."""
        return "".join(self.texts)

    def attr(self, name: str) -> str | None:
        return dict(self.attrs).get(name)

    @property
    def classes(self) -> set[str]:
        return set((self.attr("class") or "").split())

    def within(self, tag: str, cls: str | None = None) -> bool:
        return any(a.tag == tag and (cls is None or cls in a.classes) for a in self.ancestors)

    def descendants(self, elements: list["Element"]) -> list["Element"]:
        return [el for el in elements if self in el.ancestors]

    def describe(self) -> str:
        attrs = "".join(f" {k}={v!r}" for k, v in self.attrs)
        return f"<{self.tag}{attrs}>"

    __repr__ = describe  # not the dataclass's: that one would print the whole tree, over and over


class Tree(HTMLParser):
    """Elements with their ancestors and text; comments, declarations and the like apart."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.stack: list[Element] = []
        self.oddities: list[str] = []  # anything a browser might read differently from us
        self.main_oddities: list[str] = []  # the same, inside <main>
        self.main_closed = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, attrs, tuple(self.stack))
        self.elements.append(element)
        if self.stack:
            self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # A browser ignores the slash of <div/>: the element stays open.
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i].tag == tag:
                if i != len(self.stack) - 1:
                    self.odd(f"</{tag}> closes {[e.tag for e in self.stack[i + 1:]]}")
                del self.stack[i:]
                self.main_closed |= tag == "main"
                return
        self.odd(f"stray </{tag}>")

    def handle_data(self, data: str) -> None:
        for element in self.stack:
            element.texts.append(data)

    def handle_comment(self, data: str) -> None:
        self.odd(f"comment <!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        if decl.lower() != "doctype html":
            self.odd(f"declaration <!{decl}>")

    def handle_pi(self, data: str) -> None:
        self.odd(f"processing instruction <?{data}>")

    def unknown_decl(self, data: str) -> None:
        self.odd(f"unknown declaration <![{data}]>")

    def odd(self, what: str) -> None:
        self.oddities.append(what)
        if any(e.tag == "main" for e in self.stack):
            self.main_oddities.append(what)


def parse(html: str) -> Tree:
    tree = Tree()
    tree.feed(html)
    tree.close()
    return tree


def url_as_browser_reads(value: str) -> str:
    """The URL a browser resolves: entities already decoded by the parser; leading and
    trailing C0 controls and spaces stripped, tabs and newlines removed anywhere."""
    value = value.strip("".join(chr(c) for c in range(0x21)))
    return re.sub(r"[\t\n\r]", "", value).lower()


def check_attributes(element: Element, where: str) -> None:
    for name, value in element.attrs:
        assert not name.startswith("on"), f"{where}: event handler on {element.describe()}"
        assert name not in FORBIDDEN_ATTRIBUTES, f"{where}: {name} attribute on {element.describe()}"
        if name in URL_ATTRIBUTES and value is not None:
            url = url_as_browser_reads(value)
            assert not url.startswith(DANGEROUS_SCHEMES), f"{where}: dangerous URL in {element.describe()}"


def check_entry_html(html: str, where: str) -> Tree:
    """An entry's html: allowlisted elements and attributes only, links to web URLs only."""
    tree = parse(html)
    assert not tree.oddities, f"{where}: {tree.oddities} in {html!r}"
    assert not tree.stack, f"{where}: unclosed {[e.tag for e in tree.stack]} in {html!r}"
    for element in tree.elements:
        assert element.tag in ENTRY_TAGS, f"{where}: {element.describe()} is not allowlisted, in {html!r}"
        for name, value in element.attrs:
            assert name in ENTRY_ATTRIBUTES[element.tag], f"{where}: {name} on {element.describe()}"
        check_attributes(element, where)
        for name in ("href", "src"):
            value = element.attr(name)
            if value is None:
                continue
            url = url_as_browser_reads(value)
            scheme = re.match(r"^([a-z][a-z0-9+.-]*):", url)
            assert scheme is None or scheme.group(1) in ENTRY_SCHEMES, f"{where}: {element.describe()}"
    return tree


def check_page(html: str, where: str) -> Tree:
    """A reader page: nothing active or dangerous inside <main>; parsed as a browser would."""
    tree = parse(html)
    assert not tree.main_oddities, f"{where}: {tree.main_oddities}"
    assert tree.main_closed, f"{where}: <main> is not closed"
    mains = [el for el in tree.elements if el.tag == "main"]
    assert len(mains) == 1, f"{where}: {len(mains)} <main>"
    inside = mains[0].descendants(tree.elements)
    assert inside, f"{where}: empty <main>"
    for element in inside:
        if (element.tag, element.attr("id")) in PAGE_OWN and not element.within("div", "entry-body"):
            continue
        assert element.tag not in FORBIDDEN_TAGS, f"{where}: {element.describe()} inside <main>"
        if element.within("div", "entry-body"):
            assert element.tag in ENTRY_TAGS, f"{where}: {element.describe()} in an entry"
    # The page's own tags outside <main> (stylesheet, icons, scripts...) are its business;
    # still, no handler and no dangerous URL anywhere. The <title> is checked as text.
    for element in tree.elements:
        check_attributes(element, where)
    return tree


def find(tree: Tree, tag: str, cls: str | None = None) -> list[Element]:
    """Elements of the document (not the static markup inside a <template>)."""
    return [
        el for el in tree.elements
        if el.tag == tag and (cls is None or cls in el.classes) and not el.within("template")
    ]


def one(tree: Tree, tag: str, cls: str | None = None) -> Element:
    found = find(tree, tag, cls)
    assert len(found) == 1, f"{len(found)} <{tag} class={cls!r}>"
    return found[0]


def assert_plain_text(element: Element, expected: str, where: str) -> None:
    """The element shows exactly `expected`, as text, with no element inside."""
    assert not element.children, f"{where}: {[c.describe() for c in element.children]} inside {element.describe()}"
    assert element.text == expected, f"{where}: {element.text!r} != {expected!r}"


# --- what the API makes of a payload ------------------------------------------------------


def cleaned_text(value: str) -> str:
    """A multi-line field as stored: control characters (NUL...) dropped, CRLF as LF."""
    return _CONTROL.sub("", value).replace("\r\n", "\n")


def cleaned_line(value: str) -> str:
    """A one-line field as stored: control characters dropped, whitespace runs as one space."""
    return " ".join(cleaned_text(value).split())


def cut(payload: str, name: str) -> str:
    return payload[: LIMITS[name]]


def story_fields(payload: str) -> dict[str, str]:
    return {"headline": cut(payload, "headline"), "dateline": cut(payload, "dateline"), "summary": cut(payload, "summary")}


def entry_requests(payload: str, photo_on_site: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """(persona, request) for each entry carrying the payload: every kind, every text field.
    The photo's URL carries the payload too, in an https URL's query or in a path on the site."""
    body = cut(payload, "body")
    short = cut(payload, "speaker")
    long = cut(payload, "caption")
    # A URL holds no spaces, and a path on the site only plain segments (a backslash reads as
    # "//host" to a browser): the payload goes in as a link would carry it, percent-encoded.
    image_url = ("/media/" + quote(payload, safe="").replace(".", "%2E") if photo_on_site
                 else "https://example.com/p.jpg?q=" + re.sub(r"\s", "%20", payload))
    return [
        ("rita", {"kind": "text", "body": body, "key_event": True}),
        ("eve", {"kind": "quote", "body": body, "speaker": short, "role": short, "pinned": True}),
        ("rita", {
            "kind": "image", "body": body, "image_url": image_url[: LIMITS["url"]],
            "caption": long, "credit": short, "alt": long,
        }),
        ("rita", {"kind": "embed", "body": body,
                  "url": ("https://example.com/v?q=" + re.sub(r"\s", "%20", payload))[: LIMITS["url"]]}),
    ]  # fmt: skip


def check_entry(entry: dict[str, Any], sent: dict[str, Any], where: str) -> None:
    """The API's answer for an entry: the payload made it, and its html is inert."""
    assert entry["kind"] == sent["kind"]
    assert entry["body"] == cleaned_text(sent["body"]), f"{where}: the body did not make it"
    for name in ("speaker", "role", "caption", "credit", "alt", "image_url", "url"):
        if name in sent:
            assert entry[name] == cleaned_line(sent[name]), f"{where}: {name} did not make it"
    tree = check_entry_html(entry["html"], where)
    # Markdown goes through the sanitizer; what render_html adds shows the fields as text.
    if entry["kind"] == "quote":
        assert_plain_text(one(tree, "cite"), entry["speaker"], where + " cite")
        footer = one(tree, "footer")
        assert [c.tag for c in footer.children] == ["cite"], where
        assert footer.text == f"{entry['speaker']}, {entry['role']}", where + " footer"
        assert tree.elements[0].tag == "blockquote" and footer.ancestors == (tree.elements[0],), where
    elif entry["kind"] == "image":
        img = one(tree, "img")
        assert img.attr("src") == entry["image_url"], where + " img src"
        assert img.attr("alt") == entry["alt"], where + " img alt"
        figcaption = one(tree, "figcaption")
        if entry["credit"]:
            assert [c.tag for c in figcaption.children] == ["span"], where
            assert_plain_text(one(tree, "span", "credit"), entry["credit"], where + " credit")
            assert figcaption.text == f"{entry['caption']} {entry['credit']}", where + " caption"
        else:
            assert_plain_text(figcaption, entry["caption"], where + " caption")
    elif entry["kind"] == "embed":
        (link,) = [el for el in find(tree, "a") if el.attr("href") == entry["url"]]
        assert not link.children, f"{where}: {link.children} in the embed's link"
        assert set((link.attr("rel") or "").split()) >= {"noopener", "noreferrer"}, link.describe()


def check_story_head(tree: Tree, story: dict[str, Any], where: str) -> None:
    """The headline, dateline and summary on the story page: shown as text, nothing else."""
    assert_plain_text(one(tree, "h1"), story["headline"], where + " h1")
    assert_plain_text(one(tree, "span", "dateline"), story["dateline"], where + " dateline")
    assert_plain_text(one(tree, "p", "summary"), story["summary"], where + " summary")


def check_title(tree: Tree, story: dict[str, Any], site_name: str, where: str) -> None:
    assert_plain_text(one(tree, "title"), f"{story['headline']} · {site_name}", where + " title")


# --- the tests ----------------------------------------------------------------------------


def test_the_corpus_is_there() -> None:
    assert len(PAYLOADS) >= 100
    assert len(set(PAYLOADS)) == len(PAYLOADS)
    assert any("\x00" in p for p in PAYLOADS), "the NUL-byte payloads are part of the corpus"


def test_svg_and_math_are_never_allowlisted() -> None:
    for tag in ("svg", "math", "script", "style", "iframe", "object", "embed", "form", "img", "template", "noscript"):
        assert tag not in markup.ALLOWED_TAGS
        assert tag not in markup.ALLOWED_ATTRIBUTES
    for tag, attrs in markup.ALLOWED_ATTRIBUTES.items():
        assert not {a for a in attrs if a.startswith("on") or a in ("style", "src", "srcdoc", "xlink:href")}, tag
    assert markup.URL_SCHEMES == {"http", "https", "mailto"}
    # The sanitizer itself drops them, whatever the Markdown around them.
    for source in ("<svg><a href='https://x.example'>x</a></svg>", "<math><mi>x</mi></math>", "x <svg/> y"):
        tree = parse(markup.render_markdown(source))
        assert not {"svg", "math", "mi"} & {el.tag for el in tree.elements}


def post_and_check(index: int, client: TestClient, site: Any, settings: Any) -> dict[str, Any]:
    """One payload in every field of a story and of its entries; returns the story."""
    payload = PAYLOADS[index]
    where = f"payload {index} {payload!r}"

    # A story with the payload in every field of its own.
    sent = story_fields(payload)
    response = client.post("/api/v1/stories", json={**sent, "status": "live"}, headers=site.auth("eve"))
    assert response.status_code == 201, f"{where}: {response.text}"
    story = response.json()
    for name in ("headline", "dateline"):
        assert story[name] == cleaned_line(sent[name]), f"{where}: the {name} did not make it"
    assert story["summary"] == cleaned_text(sent["summary"]), f"{where}: the summary did not make it"
    slug = story["slug"]

    # An entry of each kind with the payload in every text field it has.
    created = []
    for persona, request in entry_requests(payload, photo_on_site=index % 2 == 1):
        response = client.post(f"/api/v1/stories/{slug}/entries", json=request, headers=site.auth(persona))
        assert response.status_code == 201, f"{where} {request['kind']}: {response.text}"
        entry = response.json()
        check_entry(entry, request, f"{where} {request['kind']} entry html")
        created.append(entry)

    # The payload as a URL is refused outright.
    response = client.post(
        f"/api/v1/stories/{slug}/entries",
        json={"kind": "image", "image_url": payload[: LIMITS["url"]], "url": payload[: LIMITS["url"]], "alt": "a"},
        headers=site.auth("rita"),
    )
    assert response.status_code == 422, f"{where}: as a URL: {response.status_code} {response.text}"
    assert {"image_url", "url"} <= {e["field"] for e in response.json()["errors"]}, f"{where}: {response.text}"

    # The story page: every entry as the API answered it, headline and friends as text.
    response = client.get(f"/stories/{slug}")
    assert response.status_code == 200, where
    page = response.text
    tree = check_page(page, f"{where} story page")
    check_story_head(tree, story, f"{where} story page")
    check_title(tree, story, settings.site_name, f"{where} story page")
    for entry in created:
        assert entry["html"] in page, f"{where}: entry {entry['id']} ({entry['kind']}) is not on the story page"
        assert len(find(tree, "article", "kind-" + entry["kind"])) == 1, f"{where}: {entry['kind']}"
    assert len(find(tree, "div", "entry-body")) == len(created), where
    key_events = one(tree, "details", "key-events")
    links = [el for el in key_events.descendants(tree.elements) if el.tag == "a"]
    assert len(links) == 1 and [c.tag for c in links[0].children] == ["time", "span"], f"{where}: key-event link"

    # A permalink page: the same template for every kind, so one kind per payload, in turn.
    entry = created[index % len(created)]
    response = client.get(f"/stories/{slug}/entries/{entry['id']}")
    assert response.status_code == 200, where
    tree = check_page(response.text, f"{where} permalink {entry['kind']}")
    assert entry["html"] in response.text, f"{where}: entry {entry['id']} not on its permalink page"
    assert len(find(tree, "div", "entry-body")) == 1, where
    assert_plain_text(one(tree, "p", "kicker").children[0], story["headline"], f"{where} permalink kicker")
    check_title(tree, story, settings.site_name, f"{where} permalink")
    return story


def check_front_page(client: TestClient, made: dict[int, dict[str, Any]]) -> None:
    """Each story's card on the front page: headline, summary and dateline as text."""
    response = client.get("/")
    assert response.status_code == 200
    tree = check_page(response.text, "front page")
    cards = find(tree, "li", "story-card")
    assert len(cards) == len(made)
    inside = [el for card in cards for el in card.descendants(tree.elements)]
    for index, story in made.items():
        where = f"payload {index} {PAYLOADS[index]!r} front page"
        (link,) = [el for el in inside if el.tag == "a" and el.attr("href") == f"/stories/{story['slug']}"]
        assert_plain_text(link, story["headline"], where + " headline")
        (card,) = [card for card in cards if card in link.ancestors]
        parts = {el.tag + "." + ".".join(sorted(el.classes)): el for el in card.descendants(tree.elements)}
        assert_plain_text(parts["p.summary"], story["summary"], where + " summary")
        assert parts["p.meta"].text.startswith(f"{story['dateline']} · "), where + " dateline"


# Several payloads per test keeps the two databases' runs short; each payload has a story of
# its own, and a failure names the payload and does not hide those after it.
GROUP = 3
GROUPS = [range(i, min(i + GROUP, len(PAYLOADS))) for i in range(0, len(PAYLOADS), GROUP)]


@pytest.mark.parametrize("indexes", GROUPS, ids=lambda r: f"payloads{r.start:03d}-{r.stop - 1:03d}")
def test_payloads_are_inert_everywhere(indexes: range, client: TestClient, site: Any, settings: Any) -> None:
    made: dict[int, dict[str, Any]] = {}
    failures: list[str] = []
    for index in indexes:
        try:
            made[index] = post_and_check(index, client, site, settings)
        except AssertionError as exc:
            failures.append(f"payload {index}: {exc}")
    assert not failures, "\n\n".join(failures)
    check_front_page(client, made)


def test_error_pages_are_inert(client: TestClient, site: Any) -> None:
    """The reader's 404 page says the path it did not find: as text."""
    for index, payload in enumerate(PAYLOADS):
        path = "/nowhere/" + payload.replace("\x00", "")
        response = client.get(quote(path, safe="/"))
        where = f"payload {index} {payload!r} in a 404 path"
        assert response.status_code == 404, where
        assert response.headers["content-type"].startswith("text/html"), where
        tree = check_page(response.text, where)
        messages = [el for el in find(tree, "p") if el.within("main") and not el.children]
        # The path as the server saw it: the test client drops whitespace from a URL and
        # leaves some characters escaped.
        shown = ["".join(unquote(m.text).split()) for m in messages]
        assert shown == ["".join(unquote(f"Nothing here: {path}").split())], where
    # A bad query parameter of a page is answered as JSON, which no browser runs.
    response = client.get("/stories/x", params={"before": "<script>alert(1)</script>"})
    assert response.status_code == 422
    assert not response.headers["content-type"].startswith("text/html")
    assert response.headers["x-content-type-options"] == "nosniff"


BAD_URLS = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "\tjavascript:alert(1)",
    "\x01javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "java\x00script:alert(1)",
    "javascript://example.com/%0Aalert(1)",
    "javascript&colon;alert(1)",
    "&#106;avascript:alert(1)",
    "vbscript:msgbox(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "data:image/svg+xml,<svg onload=alert(1)>",
    "DATA:text/html,<script>alert(1)</script>",
    "//evil.example/x.png",
    "/\\evil.example/x.png",
    "/\\/evil.example/x.png",
    "/elsewhere/x.png",
    "http:alert(1)",
    "https:/x",
    "ftp://example.com/x.png",
    "mailto:someone@example.com",
    "",
    "example.com/x.png",
    "http://evil.example\uff1a80/x.png",  # a fullwidth colon: a host that reads as another
    "https://bank.example\uff0fpay.example/",
    "https://x\u2100y.example/",  # "a/c" in one character
]


def test_the_documents_url_pattern_refuses_what_the_server_refuses() -> None:
    """Every character that URL parsing refuses in a host (its NFKC form holds one of /?#@:)
    is outside the pattern the OpenAPI document gives, so a client that checks against the
    document is never surprised by a 422 (the fuzzer found a fullwidth colon)."""
    pattern = re.compile(WEB_URL_PATTERN)
    refused = []
    for code in range(0x80, 0x110000):
        url = f"https://a{chr(code)}b.example/"
        try:
            urlsplit(url)
        except ValueError:
            refused.append(code)
            assert not pattern.fullmatch(url), f"U+{code:04X} is allowed by the document"
    assert len(refused) >= 19  # the check ran over the characters Python refuses


def test_dangerous_urls_are_refused(client: TestClient, site: Any, live_story: str) -> None:
    """Not an http(s) URL (nor, for a photo, a path on this site): 422, and nothing stored."""
    path = f"/api/v1/stories/{live_story}/entries"
    requests = [{"kind": "embed", "url": "/media/x.png"}]  # a path on the site is no embed
    for url in BAD_URLS:
        requests += [{"kind": "image", "image_url": url, "alt": "a photo"}, {"kind": "embed", "url": url}]
    for request in requests:
        response = client.post(path, json=request, headers=site.auth("rita"))
        assert response.status_code == 422, f"{request!r}: {response.status_code} {response.text}"
    # The same values through an edit.
    image = client.post(
        path, json={"kind": "image", "image_url": "/media/ok.jpg", "alt": "ok"}, headers=site.auth("rita")
    ).json()
    embed = client.post(path, json={"kind": "embed", "url": "https://example.com/ok"}, headers=site.auth("rita")).json()
    for url in BAD_URLS:
        response = client.patch(f"{path}/{image['id']}", json={"image_url": url}, headers=site.auth("rita"))
        assert response.status_code == 422, f"image_url {url!r}: {response.status_code}"
        response = client.patch(f"{path}/{embed['id']}", json={"url": url}, headers=site.auth("rita"))
        assert response.status_code == 422, f"url {url!r}: {response.status_code}"
    listed = client.get(path).json()["entries"]
    assert sorted(e["id"] for e in listed) == sorted([image["id"], embed["id"]])
    assert {e["revision"] for e in listed} == {1}
    assert {e.get("image_url") or e.get("url") for e in listed} == {"/media/ok.jpg", "https://example.com/ok"}


# Edits go through the same rendering: a handful of the corpus, by PATCH.
EDIT_PAYLOADS = [
    p for p in PAYLOADS
    if any(s in p for s in ("<svg", "<math", "onerror", "javascript:", "</title>", "<noscript", '" on'))
][::4]  # fmt: skip


def test_edits_are_inert_too(client: TestClient, site: Any, settings: Any, live_story: str) -> None:
    assert len(EDIT_PAYLOADS) >= 8
    path = f"/api/v1/stories/{live_story}/entries"
    made = [
        client.post(path, json=request, headers=site.auth(persona)).json()
        for persona, request in entry_requests("Calm first version")
    ]
    assert all("id" in entry for entry in made), made
    for index, payload in enumerate(EDIT_PAYLOADS):
        where = f"edit {index} {payload!r}"
        sent = story_fields(payload)
        response = client.patch(f"/api/v1/stories/{live_story}", json=sent, headers=site.auth("eve"))
        assert response.status_code == 200, f"{where}: {response.text}"
        story = response.json()
        assert story["headline"] == cleaned_line(sent["headline"]), where
        edited = []
        for entry, (_, request) in zip(made, entry_requests(payload)):
            changes = {k: v for k, v in request.items() if k not in ("kind", "pinned", "key_event")}
            response = client.patch(f"{path}/{entry['id']}", json=changes, headers=site.auth("eve"))
            assert response.status_code == 200, f"{where}: {response.text}"
            answer = response.json()
            assert answer["revision"] == index + 2, where
            check_entry(answer, {"kind": entry["kind"], **changes}, f"{where} {entry['kind']} entry html")
            edited.append(answer)
        response = client.get(f"/stories/{live_story}")
        tree = check_page(response.text, f"{where} story page")
        check_story_head(tree, story, where)
        check_title(tree, story, settings.site_name, where)
        for answer in edited:
            assert answer["html"] in response.text, f"{where}: edited entry {answer['id']} not on the page"
