"""Web-page source: images on listed pages, each with the licence its page or figure states."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from bs4 import BeautifulSoup, Tag

from acnedata.errors import NetworkError, SourceError
from acnedata.htmltext import element_text
from acnedata.licensing import refused_host
from acnedata.robots import ROBOTS_TOKEN, X_ROBOTS_BLOCKING, x_robots_block
from acnedata.sources.base import Candidate, SearchContext, int_option, label_for
from acnedata.spec import DatasetSpec

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp")
# Meta robots directives that forbid using a page's images; X-Robots-Tag's set plus the one
# that only makes sense on a page.
BLOCKING_DIRECTIVES = X_ROBOTS_BLOCKING | {"noimageindex"}
LAZY_SRC = ("data-src", "data-lazy-src", "data-original")
# Hosts that serve licence badges: their images are the licence, not content.
BADGE_HOSTS = ("creativecommons.org", "licensebuttons.net")
PICTURE_TYPES = ("", "image/jpeg", "image/png", "image/webp")
NEXT_TEXTS = {"next", "next page", "older", "older posts", "다음", "다음 페이지"}
CC_HREF = re.compile(
    r"^(?:https?:)?//(?:[a-z0-9-]+\.)*creativecommons\.org/(?:licenses|publicdomain)/", re.I
)
DEFAULT_MAX_PAGES = 5


@dataclass
class _Link:
    """One licence link on a page and the figure it belongs to (None: the page)."""

    fields: dict[str, str]
    owner: Tag | None
    ancestors: set[int] = field(default_factory=set)


class WebPageSource:
    """Reads the pages in ``[sources.webpage] pages`` and yields the images on them.

    Options: ``pages`` (a list of URLs, or a table class → list of URLs; without it base_url is
    the one page), ``label`` (the class of a plain list; otherwise the class whose name, alias or
    term is in the page title, else none), ``follow_pagination`` (false), ``max_pages`` (5 per
    listed page), ``allow_refused_atlases`` (false). Pages that robots.txt disallows, that carry a
    noimageindex/noai meta robots, that cannot be fetched, or that are on an atlas whose terms
    forbid reuse yield nothing; each is listed in ``skipped`` as (url, reason).
    """

    name = "webpage"

    def __init__(self) -> None:
        self.skipped: list[tuple[str, str]] = []
        self._failures: list[str] = []

    def candidates(self, ctx: SearchContext) -> Iterator[Candidate]:
        self.skipped, self._failures = [], []
        opts = ctx.source.options
        follow = bool(opts.get("follow_pagination", False))
        max_pages = max(1, int_option(ctx, "max_pages", DEFAULT_MAX_PAGES)) if follow else 1
        seen: dict[str | None, set[str]] = {}
        found = 0
        for seed, label in _seeds(ctx):
            stated = label is not None
            for number, (page_url, soup) in enumerate(self._pages(ctx, seed, max_pages)):
                if number == 0 and not stated:
                    label = label_from_title(ctx.spec, _page_title(soup))
                done = seen.setdefault(label, set())
                if len(done) >= ctx.limit:
                    break
                for cand in page_candidates(soup, page_url):
                    if cand.source_id in done:
                        continue
                    done.add(cand.source_id)
                    cand.query = seed
                    cand.searched_class = label
                    cand.label_hint = label if stated else None
                    yield cand
                    found += 1
                    if len(done) >= ctx.limit:
                        break
        if not found and self._failures:
            # Nothing to go on with and at least one page failed: make it the source's error.
            raise SourceError(f"no page could be used: {self._failures[0]}")

    def _pages(self, ctx: SearchContext, seed: str, max_pages: int) -> Iterator[tuple[str, Any]]:
        """The seed page, then its same-site "next" pages while following is on."""
        url: str | None = seed
        visited: set[str] = set()
        while url and len(visited) < max_pages and url not in visited:
            visited.add(url)
            loaded = self._load(ctx, url)
            if loaded is None:
                return
            page_url, soup = loaded
            yield page_url, soup
            nxt = next_page(soup, _base(soup, page_url))
            url = nxt if nxt and _site(nxt) == _site(seed) else None

    def _load(self, ctx: SearchContext, url: str) -> tuple[str, Any] | None:
        """(final url, soup) for a page we may use, or None with the reason in `skipped`."""
        allow_refused = bool(ctx.source.options.get("allow_refused_atlases", False))
        if not allow_refused and (why := refused_host(url)):
            self.skipped.append((url, f"refused atlas: {why}"))
            return None
        if not ctx.session.robots_allowed(url):
            self.skipped.append((url, "robots.txt disallows"))
            return None
        try:
            text, resp = ctx.session.get_text(url, headers={"Accept": "text/html,*/*;q=0.5"})
        except (SourceError, NetworkError) as exc:
            reason = f"fetch failed: {exc}"
            self.skipped.append((url, reason))
            self._failures.append(f"{url}: {reason}")
            return None
        final = resp.url or url
        if not allow_refused and final != url and (why := refused_host(final)):
            self.skipped.append((url, f"refused atlas (after redirect): {why}"))
            return None
        ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype and "html" not in ctype and "xml" not in ctype:
            self.skipped.append((url, f"not an HTML page ({ctype})"))
            return None
        getlist = getattr(getattr(resp.raw, "headers", None), "getlist", None)
        tags = getlist("X-Robots-Tag") if getlist else [resp.headers.get("X-Robots-Tag", "")]
        if directive := x_robots_block(v for v in tags if v):
            self.skipped.append((url, f"X-Robots-Tag: {directive}"))
            return None
        soup = BeautifulSoup(text, "html.parser")
        if directive := meta_robots_block(soup):
            self.skipped.append((url, f"meta robots: {directive}"))
            return None
        return final, soup


def _seeds(ctx: SearchContext) -> list[tuple[str, str | None]]:
    """(page url, stated class or None) for every listed page, in spec order."""
    opts, spec = ctx.source.options, ctx.spec
    pages = opts.get("pages")
    if pages is None and ctx.source.base_url:
        pages = [ctx.source.base_url]
    where = f"{spec.path or spec.name}: [sources.webpage]"
    if isinstance(pages, dict):
        out: list[tuple[str, str | None]] = []
        for key, urls in pages.items():
            klass = label_for(spec, str(key))
            if klass is None:
                raise SourceError(
                    f"{where} pages names {key!r}, which is no class of the spec; "
                    f"classes are {', '.join(spec.class_names)}"
                )
            out += [(u, klass) for u in _url_list(urls, where)]
        return out
    if pages is None:
        raise SourceError(f'{where} needs pages = ["https://…"] or a table class = ["https://…"]')
    label = opts.get("label")
    klass = label_for(spec, str(label)) if label else None
    if label and klass is None:
        raise SourceError(
            f"{where} label = {label!r} is no class of the spec; "
            f"classes are {', '.join(spec.class_names)}"
        )
    return [(u, klass) for u in _url_list(pages, where)]


def _url_list(value: Any, where: str) -> list[str]:
    urls = [value] if isinstance(value, str) else value
    if not isinstance(urls, list) or not all(isinstance(u, str) and u.strip() for u in urls):
        raise SourceError(f"{where} pages must list URLs as strings")
    return [u.strip() for u in urls]


def _site(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return (parts.hostname or "").lower(), parts.port or default


def _rels(tag: Tag) -> list[str]:
    rel = tag.get("rel") or []
    return [r.lower() for r in (rel.split() if isinstance(rel, str) else rel)]


def _attr(tag: Tag, name: str) -> str:
    value = tag.get(name)
    return " ".join(value) if isinstance(value, list) else (value or "").strip()


def _text(tag: Tag | None) -> str:
    return element_text(tag)


def _base(soup: Any, page_url: str) -> str:
    """The URL relative links resolve against: <base href> if the page has one."""
    base = soup.find("base", href=True)
    return urljoin(page_url, _attr(base, "href")) if base else page_url


def _page_title(soup: Any) -> str:
    return _text(soup.find("title"))


def meta_robots_block(soup: Any) -> str | None:
    """The first meta robots directive (for all robots or for us) that forbids using images."""
    for meta in soup.find_all("meta"):
        if _attr(meta, "name").lower() not in ("robots", ROBOTS_TOKEN):
            continue
        for token in re.split(r"[\s,]+", _attr(meta, "content").lower()):
            if token in BLOCKING_DIRECTIVES:
                return token
    return None


def label_from_title(spec: DatasetSpec, title: str) -> str | None:
    """The class whose name, alias or search term is in `title`; the longest match wins."""
    low, best, best_len = title.lower(), None, 0
    for cls in spec.classes:
        for word in (cls.name, *cls.aliases, *cls.all_terms()):
            w = word.strip().lower()
            if w and w in low and len(w) > best_len:
                best, best_len = cls.name, len(w)
    return best


def next_page(soup: Any, base: str) -> str | None:
    """The page's rel="next" link, else a link whose text says "next"."""
    for tag in soup.find_all(["link", "a"], href=True):
        if "next" in _rels(tag):
            return _absolute(base, _attr(tag, "href"))
    for tag in soup.find_all("a", href=True):
        if _text(tag).strip(" ›»→>").strip().lower() in NEXT_TEXTS:
            return _absolute(base, _attr(tag, "href"))
    return None


def parse_srcset(value: str | None) -> list[tuple[str, str]]:
    """(url, descriptor) pairs of a srcset, per the HTML parsing rules (URLs may hold commas)."""
    out: list[tuple[str, str]] = []
    text, pos = value or "", 0
    while pos < len(text):
        while pos < len(text) and (text[pos].isspace() or text[pos] == ","):
            pos += 1
        start = pos
        while pos < len(text) and not text[pos].isspace():
            pos += 1
        url, descriptor = text[start:pos], ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            start = pos
            while pos < len(text) and text[pos] != ",":
                pos += 1
            descriptor = text[start:pos].strip()
        if url:
            out.append((url, descriptor.lower()))
    return out


def largest(candidates: list[tuple[str, str]]) -> str | None:
    """The srcset entry with the largest width (w) or, failing widths, the largest density (x)."""

    def size(entry: tuple[str, str]) -> tuple[int, float]:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)([wx])", entry[1].split(" ")[0]) if entry[1] else None
        if m is None:
            return (0, 1.0)  # no descriptor means 1x
        return (1 if m[2] == "w" else 0, float(m[1]))

    return max(candidates, key=size)[0] if candidates else None


def _absolute(base: str, ref: str) -> str | None:
    """An absolute http(s) URL without its fragment, or None (data:, javascript:, mailto:, …)."""
    ref = ref.strip()
    if not ref or ref.lower().startswith("data:"):
        return None
    try:
        parts = urlsplit(urljoin(base, ref))
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


def _is_image_path(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(IMAGE_SUFFIXES)


def _is_unwanted(url: str) -> bool:
    """Vector images and licence badges are not photographs."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    badge = any(host == h or host.endswith("." + h) for h in BADGE_HOSTS)
    return badge or parts.path.lower().endswith((".svg", ".svgz"))


def _is_licence_link(tag: Tag) -> bool:
    if tag.name not in ("a", "link") or not _attr(tag, "href"):
        return False
    rels = _rels(tag)
    return (
        "license" in rels
        or "licence" in rels
        or (tag.name == "a" and bool(CC_HREF.match(_attr(tag, "href"))))
    )


def _pixel(img: Tag) -> bool:
    """A tracking pixel: a declared width or height of 2 px or less."""
    for name in ("width", "height"):
        m = re.match(r"\s*(\d+)", _attr(img, name))
        if m and int(m[1]) <= 2:
            return True
    return False


def _img_url(img: Tag, base: str) -> str | None:
    """The best file an <img> offers: the largest (data-)srcset entry, else data-src, else src."""
    pool = parse_srcset(_attr(img, "srcset")) + parse_srcset(_attr(img, "data-srcset"))
    parent = img.parent
    if isinstance(parent, Tag) and parent.name == "picture":
        for source in parent.find_all("source"):
            if _attr(source, "type").lower() in PICTURE_TYPES:
                pool += parse_srcset(_attr(source, "srcset"))
                pool += parse_srcset(_attr(source, "data-srcset"))
    choices = [largest([(u, d) for u, d in pool if not u.lower().startswith("data:")])]
    choices += [_attr(img, name) for name in (*LAZY_SRC, "src")]  # lazy loaders hide the file
    for choice in choices:
        url = _absolute(base, choice or "")
        if url and not _is_unwanted(url):
            return url
    return None


def _figcaption(el: Tag) -> str:
    figure = el.find_parent("figure")
    return _text(figure.find("figcaption")) if figure is not None else ""


def _licence_links(soup: Any, base: str) -> list[_Link]:
    links = []
    for tag in soup.find_all(["a", "link"]):
        if not _is_licence_link(tag):
            continue
        url = _absolute(base, _attr(tag, "href"))
        if not url:
            continue
        fields = {"licence_url": url}
        if tag.name == "a" and (text := _text(tag)):
            fields["licence"] = text
        ancestors = {id(p) for p in tag.parents}
        links.append(_Link(fields, tag.find_parent("figure"), ancestors))
    return links


def _licence_for(el: Tag, links: list[_Link]) -> dict[str, str]:
    """The licence link nearest `el`: its own figure's (or element's), else the page's.

    A link inside a <figure> speaks for that figure only, so a sibling figure's licence never
    reaches images outside it.
    """
    figures = {id(f) for f in el.find_parents("figure")}
    for ancestor in el.parents:
        for link in links:
            if link.owner is not None and id(link.owner) not in figures:
                continue
            if id(ancestor) in link.ancestors:
                return dict(link.fields)
    return {}


def _page_author(soup: Any) -> str | None:
    meta = soup.find("meta", attrs={"name": re.compile(r"^author$", re.IGNORECASE)})
    if meta is not None and _attr(meta, "content"):
        return _attr(meta, "content")
    for tag in soup.find_all("a"):
        if "author" in _rels(tag) and (text := _text(tag)):
            return text
    return None


def page_candidates(soup: Any, page_url: str) -> list[Candidate]:
    """Every image on one parsed page, deduplicated, with title, author and licence fields."""
    base = _base(soup, page_url)
    links = _licence_links(soup, base)
    author = _page_author(soup)
    out: list[Candidate] = []
    seen: set[str] = set()
    consumed: set[int] = set()  # thumbnails inside a link to their full-size file

    def add(el: Tag, url: str, title: str) -> None:
        if url in seen:
            return
        seen.add(url)
        out.append(
            Candidate(
                source="webpage",
                source_id=url,
                url=url,
                page_url=page_url,
                title=title or None,
                author=author,
                licence_raw=_licence_for(el, links),
            )
        )

    for el in soup.find_all(["a", "img"]):
        if id(el) in consumed or any(_is_licence_link(p) for p in el.parents if p.name == "a"):
            continue  # a licence badge, or a thumbnail already taken as its link's file
        if el.name == "a":
            if _is_licence_link(el):
                continue
            url = _absolute(base, _attr(el, "href"))
            if not url or not _is_image_path(url) or _is_unwanted(url):
                continue
            inner = el.find_all("img")
            consumed.update(id(i) for i in inner)
            alt = next((_attr(i, "alt") for i in inner if _attr(i, "alt")), "")
            add(el, url, _figcaption(el) or alt or _attr(el, "title") or _text(el))
        else:
            if _pixel(el):
                continue
            url = _img_url(el, base)
            if url:
                add(el, url, _figcaption(el) or _attr(el, "alt") or _attr(el, "title"))
    return out
