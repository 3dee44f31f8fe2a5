"""Markdown in, safe HTML out: markup.render_markdown and sanitize, and entries.render_html.

Unit tests, no database. Checks that matter for safety read the output with the standard
library's HTML parser (elements and decoded attributes), not with substring searches.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from dateline.stories import markup
from dateline.stories.entries import render_html
from dateline.stories.markup import ALLOWED_TAGS, LINK_REL, render_markdown, sanitize


class Elements(HTMLParser):
    """The start tags of a fragment, in order, with decoded attributes; and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text = ""
        self.comments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text += data

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def parsed(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    parser.close()
    return parser


def tags(html: str) -> list[str]:
    return [tag for tag, _ in parsed(html).tags]


def attrs_of(html: str, tag: str) -> list[dict[str, str | None]]:
    return [attrs for name, attrs in parsed(html).tags if name == tag]


# --- Markdown features --------------------------------------------------------------------


def test_emphasis_and_strikethrough() -> None:
    assert render_markdown("*a* **b** _c_ ~~d~~") == "<p><em>a</em> <strong>b</strong> <em>c</em> <s>d</s></p>"


def test_links_get_the_ugc_rel() -> None:
    html = render_markdown("[the report](https://example.com/r?a=1&b=2 \"Title\")")
    assert attrs_of(html, "a") == [
        {"href": "https://example.com/r?a=1&b=2", "title": "Title", "rel": LINK_REL}
    ]
    assert LINK_REL == "noopener noreferrer nofollow ugc"
    assert parsed(html).text == "the report"


@pytest.mark.parametrize(
    "source, href",
    [
        ("[x](http://example.com)", "http://example.com"),
        ("[x](mailto:desk@example.com)", "mailto:desk@example.com"),
        ("<https://example.com/auto>", "https://example.com/auto"),
        ('<a href="https://example.com">x</a>', "https://example.com"),
        ("[x](/stories/other)", "/stories/other"),
    ],
)
def test_web_and_mail_links_are_kept(source: str, href: str) -> None:
    (attrs,) = attrs_of(render_markdown(source), "a")
    assert attrs["href"] == href
    assert attrs["rel"] == LINK_REL


def test_raw_link_attributes_are_replaced_or_dropped() -> None:
    html = render_markdown(
        '<a href="https://example.com" rel="opener" target="_blank" class="c" id="i" '
        'style="color:red" onclick="alert(1)">x</a>'
    )
    assert attrs_of(html, "a") == [{"href": "https://example.com", "rel": LINK_REL}]


def test_lists() -> None:
    html = render_markdown("- a\n- b\n\n3. c\n4. d")
    assert tags(html) == ["ul", "li", "li", "ol", "li", "li"]
    assert attrs_of(html, "ol") == [{"start": "3"}]


def test_blockquote() -> None:
    assert tags(render_markdown("> said\n> on air")) == ["blockquote", "p"]


def test_code_inline_and_fenced() -> None:
    html = render_markdown("`a < b` and\n\n```python\n<script>alert(1)</script>\n```")
    assert tags(html) == ["p", "code", "pre", "code"]
    assert attrs_of(html, "code") == [{}, {}]  # no class="language-python": code takes no attribute
    assert "<script>alert(1)</script>" in parsed(html).text  # shown as text


def test_tables() -> None:
    html = render_markdown("| a | b |\n|---|--:|\n| 1 | 2 |")
    assert tags(html) == ["table", "thead", "tr", "th", "th", "tbody", "tr", "td", "td"]
    # Alignment comes as style="text-align:..." from markdown-it: style is never allowed.
    assert all(not attrs for _, attrs in parsed(html).tags)


def test_headings_start_at_h2() -> None:
    html = render_markdown("# H1\n\n## H2\n\n### H3\n\n##### H5")
    assert tags(html) == ["h2", "h3"]  # h1 is the page's own; h5 is not in the allowlist
    assert parsed(html).text.split() == ["H1", "H2", "H3", "H5"]  # the words stay


def test_line_breaks_and_rule() -> None:
    assert tags(render_markdown("line  \nbreak\n\n---")) == ["p", "br", "hr"]


def test_blank_source_renders_nothing() -> None:
    assert render_markdown("") == ""
    assert render_markdown("  \n\t\n ") == ""


# --- raw HTML ---------------------------------------------------------------------------


def test_allowed_raw_html_is_kept() -> None:
    html = render_markdown(
        '<mark>m</mark> <abbr title="Agence">A</abbr> H<sub>2</sub>O x<sup>2</sup> <q>q</q> '
        "<small>s</small> <ins>i</ins> <del>d</del> <u>u</u> <b>b</b> <i>i</i> <cite>c</cite>"
    )
    assert tags(html) == ["p", "mark", "abbr", "sub", "sup", "q", "small", "ins", "del", "u", "b", "i", "cite"]
    assert attrs_of(html, "abbr") == [{"title": "Agence"}]


def test_raw_table_keeps_only_its_attributes() -> None:
    html = render_markdown(
        '<table><tr><th scope="col" style="x">a</th><td colspan="2" rowspan="1" onclick="x" class="c">1</td></tr></table>'
    )
    assert tags(html) == ["table", "tbody", "tr", "th", "td"]
    assert attrs_of(html, "th") == [{"scope": "col"}]
    assert attrs_of(html, "td") == [{"colspan": "2", "rowspan": "1"}]


def test_unknown_tags_go_their_text_stays() -> None:
    html = render_markdown('<div class="x"><span style="color:red">kept</span> <font>too</font></div>')
    assert tags(html) == []
    assert parsed(html).text.split() == ["kept", "too"]


@pytest.mark.parametrize(
    "source",
    [
        "<svg onload=alert(1)><circle r=5 /></svg>",
        '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
        "<svg><style><img src=x onerror=alert(1)></style></svg>",
        "<math><mi>x</mi><annotation-xml encoding=text/html><img src=x onerror=alert(1)></annotation-xml></math>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        "<script>alert(1)</script>",
        "<script src=https://evil.example/x.js></script>",
        "<style>body{display:none}</style>",
        "<iframe src=https://evil.example/></iframe>",
        '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>',
        "<object data=https://evil.example/x></object>",
        "<embed src=https://evil.example/x>",
        '<form action="https://evil.example"><input name=x><button>go</button></form>',
        "<img src=x onerror=alert(1)>",
        '<meta http-equiv="refresh" content="0;url=https://evil.example">',
        '<base href="https://evil.example/">',
        '<link rel=stylesheet href="https://evil.example/x.css">',
        "<template><img src=x onerror=alert(1)></template>",
        "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
    ],
)
def test_dangerous_elements_are_removed(source: str) -> None:
    for html in (render_markdown(source), sanitize(source), render_markdown(f"Text *before*\n\n{source}\n\nafter")):
        found = parsed(html)
        assert {tag for tag, _ in found.tags} <= ALLOWED_TAGS, html
        for _, attrs in found.tags:
            assert not [a for a in attrs if a.startswith("on") or a in ("style", "src", "srcdoc", "xlink:href")], html


def test_script_and_style_content_goes_too() -> None:
    assert render_markdown("<script>alert(1)</script>after") == "after"
    assert render_markdown("<style>p{color:red}</style>after") == "after"


def test_comments_are_dropped() -> None:
    html = render_markdown("a<!-- secret --><!--><img src=x onerror=alert(1)>-->b")
    assert not parsed(html).comments
    assert "secret" not in html
    assert tags(html) == ["p"]


def test_the_allowlist_has_no_foreign_or_active_content() -> None:
    for tag in ("svg", "math", "script", "style", "iframe", "object", "embed", "form", "input", "img",
                "template", "noscript", "base", "meta", "link", "title", "textarea", "xmp", "h1"):  # fmt: skip
        assert tag not in ALLOWED_TAGS, tag
    assert set(markup.ALLOWED_ATTRIBUTES) <= ALLOWED_TAGS
    for tag, attributes in markup.ALLOWED_ATTRIBUTES.items():
        for name in attributes:
            assert not name.startswith("on") and name not in ("style", "src", "srcdoc", "xlink:href"), (tag, name)
    assert markup.URL_SCHEMES == {"http", "https", "mailto"}


# --- dangerous links ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "[x](javascript:alert(1))",
        "[x](JAVASCRIPT:alert(1))",
        "[x](<javascript:alert(1)>)",
        "[x](vbscript:msgbox(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x][r]\n\n[r]: javascript:alert(1)",
        "<javascript:alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        '<a href=" JaVaScRiPt:alert(1)">x</a>',
        '<a href="java&#x09;script:alert(1)">x</a>',
        '<a href="&#106;avascript:alert(1)">x</a>',
        '<a href="javascript&colon;alert(1)">x</a>',
        '<a href="vbscript:msgbox(1)">x</a>',
        '<a href="data:text/html,<script>alert(1)</script>">x</a>',
        '<a href="file:///etc/passwd">x</a>',
        '<a href="ftp://example.com/x">x</a>',
    ],
)
def test_dangerous_links_lose_their_target(source: str) -> None:
    html = render_markdown(source)
    for attrs in attrs_of(html, "a"):
        href = attrs.get("href")
        if href is not None:
            # Only a relative URL may be left: one a browser does not read as a scheme.
            cleaned = "".join(ch for ch in href if ch not in "\t\n\r").strip().lower()
            assert not cleaned.startswith(("javascript:", "vbscript:", "data:", "file:", "ftp:")), html
            assert cleaned.split(":")[0] in ("http", "https", "mailto") or ":" not in cleaned.split("/")[0], html


def test_markdown_images_are_not_allowed() -> None:
    assert tags(render_markdown("![alt](https://example.com/a.png)")) == ["p"]
    assert tags(render_markdown("![x](javascript:alert(1))")) == ["p"]


# --- render_html, per kind ------------------------------------------------------------------


NASTY = "<script>alert(1)</script> \"double\" 'single' & <b>bold</b>"


def test_text_is_the_rendered_markdown() -> None:
    assert render_html("text", "**now**", {}) == "<p><strong>now</strong></p>"
    assert render_html("text", "   ", {}) == ""
    assert render_html("text", "<script>alert(1)</script>", {}) == ""


def test_quote_escapes_speaker_and_role() -> None:
    html = render_html("quote", "We *will* rebuild.", {"speaker": NASTY, "role": NASTY})
    assert tags(html) == ["blockquote", "p", "em", "footer", "cite"]
    assert attrs_of(html, "blockquote") == [{"class": "quote"}]
    assert parsed(html).text == f"We will rebuild.{NASTY}, {NASTY}"
    assert html.endswith(
        "<footer><cite>&lt;script&gt;alert(1)&lt;/script&gt; &#34;double&#34; &#39;single&#39; &amp; "
        "&lt;b&gt;bold&lt;/b&gt;</cite>, &lt;script&gt;alert(1)&lt;/script&gt; &#34;double&#34; "
        "&#39;single&#39; &amp; &lt;b&gt;bold&lt;/b&gt;</footer></blockquote>"
    )


def test_quote_without_role() -> None:
    html = render_html("quote", "Yes.", {"speaker": "The mayor"})
    assert html == '<blockquote class="quote"><p>Yes.</p><footer><cite>The mayor</cite></footer></blockquote>'


def test_image_escapes_every_field() -> None:
    url = 'https://example.com/a.jpg?x="><script>alert(1)</script>&y=\' onerror=\'alert(1)'
    html = render_html("image", "", {"image_url": url, "alt": NASTY, "caption": NASTY, "credit": NASTY})
    assert tags(html) == ["figure", "img", "figcaption", "span"]
    (img,) = attrs_of(html, "img")
    assert img == {"src": url, "alt": NASTY, "loading": "lazy", "decoding": "async"}
    assert attrs_of(html, "span") == [{"class": "credit"}]
    assert parsed(html).text == f"{NASTY} {NASTY}"  # caption, then the credit
    # The quotes of the URL and the alt are escaped, so neither leaves its attribute.
    assert 'src="https://example.com/a.jpg?x=&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;y=&#39; onerror=&#39;alert(1)"' in html


def test_image_without_credit_and_with_a_body() -> None:
    html = render_html("image", "Seen *from* the bridge.", {"image_url": "/media/a.jpg", "alt": "Bridge", "caption": "c"})
    assert html == (
        '<figure class="photo"><img src="/media/a.jpg" alt="Bridge" loading="lazy" decoding="async">'
        "<figcaption>c</figcaption></figure><p>Seen <em>from</em> the bridge.</p>"
    )


def test_image_body_is_sanitized() -> None:
    html = render_html("image", "<img src=x onerror=alert(1)><svg onload=alert(1)>", {"image_url": "/a.jpg", "alt": "a"})
    assert tags(html) == ["figure", "img", "figcaption", "p"]  # the body: an empty paragraph
    assert attrs_of(html, "img") == [{"src": "/a.jpg", "alt": "a", "loading": "lazy", "decoding": "async"}]


def test_embed_escapes_its_url() -> None:
    url = 'https://example.com/v?q="><script>alert(1)</script>&t=\' onmouseover=\'alert(1)'
    html = render_html("embed", "Watch <script>alert(1)</script>**live**", {"url": url})
    assert tags(html) == ["p", "strong", "p", "span", "a"]
    assert attrs_of(html, "p") == [{}, {"class": "embed embed-link"}]
    assert attrs_of(html, "a") == [{"href": url, "rel": LINK_REL, "target": "_blank"}]
    assert parsed(html).text == f"Watch liveexample.com {url}"


def test_a_video_embed_loads_nothing_until_asked() -> None:
    html = render_html("embed", "", {"url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ"})
    assert tags(html) == ["div", "button", "p", "a"]
    assert attrs_of(html, "div") == [{"class": "embed embed-player",
                                      "data-player": "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ?autoplay=1"}]
    assert "iframe" not in html and "Play video from YouTube" in html


def test_a_correction_note_shows_under_the_update() -> None:
    html = render_html("text", "About 6,000 people.", {"correction": 'An earlier version said 5,000 <b>"people"</b>.'})
    assert html.endswith('<p class="correction"><strong>Correction:</strong> An earlier version said 5,000 '
                         '&lt;b&gt;&#34;people&#34;&lt;/b&gt;.</p>')


def test_an_uploaded_photo_gets_its_srcset_and_size() -> None:
    html = render_html("image", "", {"image_url": "/media/" + "a" * 24 + "-1600x1067.jpg", "alt": "x"})
    img = attrs_of(html, "img")[0]
    assert img["srcset"] == ", ".join(f"/media/{'a' * 24}-{w}x{h}.jpg {w}w" for w, h in [(480, 320), (960, 640), (1600, 1067)])
    assert (img["width"], img["height"]) == ("1600", "1067")


@pytest.mark.parametrize("kind", ["text", "quote", "image", "embed"])
def test_every_kind_sanitizes_its_body(kind: str) -> None:
    fields = {
        "text": {}, "quote": {"speaker": "s"}, "image": {"image_url": "/a.jpg", "alt": "a"},
        "embed": {"url": "https://example.com/"},
    }[kind]  # fmt: skip
    body = '<svg onload=alert(1)></svg><math><mi>x</mi></math><a href="javascript:alert(1)" onclick="x">k</a>'
    html = render_html(kind, body, fields)
    found = parsed(html)
    assert not {"svg", "math", "mi", "script"} & {tag for tag, _ in found.tags}
    for tag, attrs in found.tags:
        assert not [a for a in attrs if a.startswith("on")], html
        if tag == "a" and attrs.get("href") is not None:
            assert attrs["href"].startswith(("https://", "/")), html
