"""DemoMirror: a loopback HTTP server shaped like each source and portal we support, with traps."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import random
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import imagehash
from PIL import Image

from acnedata.demo.synth import CLASSES, draw_lesion_image, near_copy
from acnedata.spec import load_spec

API_PATH = "/w/api.php"
ZENODO_PATH = "/api/records"
HF_PATH = "/api/datasets"
OPENVERSE_PATH = "/v1/images/"
OPENVERSE_TOKEN_PATH = "/v1/auth_tokens/token/"
ISIC_PATH = "/api/v2/images/search/"
GALLERY_PATH = "/gallery/"
GALLERY_PRIVATE = "/gallery/private.html"
DATAGOKR_PATH = "/api/15077093/v1/dataset"
KAGGLE_PATH = "/v1"  # the current API's endpoint root: {root}/{service}/{method}
KAGGLE_LIST_PATH = "/v1/datasets.DatasetApiService/ListDatasets"
KAGGLE_LEGACY_PATH = "/api/v1/datasets/list"
AIHUB_PATH = "/info/dataset.do"
# Credentials the mirror accepts. They are the demo's own and worthless anywhere else; the mirror
# refuses every other value, so a run that reached it with a real key would show up as an error.
DEMO_SERVICE_KEY = "demo+Service/Key=="  # "+", "/" and "=" check that the key is URL-encoded
DEMO_KAGGLE_TOKEN = "demo-kaggle-token"
DEMO_KAGGLE_BASIC = ("demo-user", "demo-key")
DEMO_OPENVERSE_CLIENT = ("demo-client-id", "demo-client-secret")
DEMO_OPENVERSE_TOKEN = "demo-openverse-token"
# The environment variables data.go.kr and Kaggle read their credentials from, set to the above.
DEMO_CREDENTIALS = {
    "DATA_GO_KR_SERVICE_KEY": DEMO_SERVICE_KEY,
    "KAGGLE_API_TOKEN": DEMO_KAGGLE_TOKEN,
}
_Reply = tuple[int, dict[str, str], bytes]  # status, headers, body
# The ISIC query the all-sources demo spec asks for nodulocystic: epidermal cysts are the nearest
# thing to acne cysts in the ISIC taxonomy (Benign → Cysts → Infundibular or epidermal cyst).
ISIC_QUERY = 'diagnosis_3:"Infundibular or epidermal cyst" AND image_type:clinical*'
ROBOTS_TXT = "User-agent: *\nDisallow: /media/private/\n"
PLANTED_KINDS = (
    "exact_duplicate",
    "near_duplicate",
    "licence_rejected",
    "licence_unknown",
    "corrupt",
    "html_as_image",
    "robots_disallowed",
    "cross_class_duplicate",
    "same_item_two_classes",
)
MIN_PER_CLASS = 8

# What Commons puts into extmetadata for each licence we use. None = the key is absent, which is
# how Commons shows "no LicenseUrl" for CC0/PD and "no licence at all" for the untagged file.
_LICENCES: dict[str, dict[str, str | None]] = {
    "CC BY-SA 4.0": {
        "LicenseShortName": "CC BY-SA 4.0",
        "LicenseUrl": "https://creativecommons.org/licenses/by-sa/4.0",
        "License": "cc-by-sa-4.0",
        "UsageTerms": "Creative Commons Attribution-Share Alike 4.0",
        "AttributionRequired": "true",
        "Copyrighted": "True",
    },
    "CC BY 4.0": {
        "LicenseShortName": "CC BY 4.0",
        "LicenseUrl": "https://creativecommons.org/licenses/by/4.0",
        "License": "cc-by-4.0",
        "UsageTerms": "Creative Commons Attribution 4.0",
        "AttributionRequired": "true",
        "Copyrighted": "True",
    },
    "CC0": {
        "LicenseShortName": "CC0",
        "LicenseUrl": None,
        "License": "cc0",
        "UsageTerms": "Creative Commons Zero, Public Domain Dedication",
        "AttributionRequired": "false",
        "Copyrighted": "False",
    },
    "Public domain": {
        "LicenseShortName": "Public domain",
        "LicenseUrl": None,
        "License": "pd",
        "UsageTerms": "Public domain",
        "AttributionRequired": "false",
        "Copyrighted": "False",
    },
    "CC BY-NC-ND 4.0": {
        "LicenseShortName": "CC BY-NC-ND 4.0",
        "LicenseUrl": "https://creativecommons.org/licenses/by-nc-nd/4.0",
        "License": "cc-by-nc-nd-4.0",
        "UsageTerms": "Creative Commons Attribution-NonCommercial-NoDerivs 4.0",
        "AttributionRequired": "true",
        "Copyrighted": "True",
    },
    "CC BY-NC 4.0": {
        "LicenseShortName": "CC BY-NC 4.0",
        "LicenseUrl": "https://creativecommons.org/licenses/by-nc/4.0",
        "License": "cc-by-nc-4.0",
        "UsageTerms": "Creative Commons Attribution-NonCommercial 4.0",
        "AttributionRequired": "true",
        "Copyrighted": "True",
    },
    "Unknown": {
        "LicenseShortName": "Unknown",
        "LicenseUrl": None,
        "License": None,
        "UsageTerms": None,
        "AttributionRequired": None,
        "Copyrighted": "True",
    },
    "missing": {
        "LicenseShortName": None,
        "LicenseUrl": None,
        "License": None,
        "UsageTerms": None,
        "AttributionRequired": None,
        "Copyrighted": None,
    },
}
_CLEAN_LICENCES = (("CC BY-SA 4.0", 50), ("CC BY 4.0", 25), ("CC0", 15), ("Public domain", 10))
_SITES = ("cheek", "forehead", "chin", "jawline", "temple", "nose", "upper back")
_HTML_ERROR = (
    b"<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head>\n"
    b"<body><h1>Forbidden</h1><p>Hotlinking is not allowed. Please visit our gallery.</p>"
    b"</body></html>\n"
)


@dataclass
class _Item:
    """One file page of the fake wiki and the bytes served for it."""

    pageid: int
    title: str
    cls: str  # the class whose searches return it (and whose words its description uses)
    media_path: str
    body: bytes
    content_type: str
    mime: str
    width: int
    height: int
    licence: str
    user: str
    site: str
    thumbable: bool = True
    utm: bool = False

    @property
    def filename(self) -> str:
        return self.title.split(":", 1)[1].replace(" ", "_")


@dataclass
class _Asset:
    """Bytes served at one path of the mirror (Openverse, ISIC and gallery files)."""

    body: bytes
    content_type: str
    width: int
    height: int


@dataclass
class _OvItem:
    """One Openverse image record; URLs are filled in with the mirror's address when served."""

    id: str
    cls: str
    title: str
    creator: str
    licence: str  # Openverse's lower-case code
    version: str
    path: str
    width: int
    height: int
    size: int
    tags: list[str]


@dataclass
class _IsicItem:
    """One ISIC image record (metadata as the v2 API nests it)."""

    isic_id: str
    licence: str  # CC-0 | CC-BY | CC-BY-NC
    attribution: str
    full: str
    thumb: str
    full_size: int
    thumb_size: int
    width: int
    height: int
    image_type: str
    clinical: dict[str, Any]


@dataclass
class _Figure:
    """One <figure> of a gallery page; `kind` says how its <img> names the file."""

    kind: str  # srcset | lazy | link | plain
    caption: str
    paths: tuple[str, ...]  # the file to collect first, then any smaller rendition
    licence: tuple[str, str] | None = None  # the figure's own licence link (href, text)


@dataclass
class _More:
    """What the mirror serves beyond Commons, Zenodo and Hugging Face, built on first use."""

    assets: dict[str, _Asset] = field(default_factory=dict)
    openverse: list[_OvItem] = field(default_factory=list)
    isic: list[_IsicItem] = field(default_factory=list)
    galleries: dict[str, list[list[_Figure]]] = field(default_factory=dict)
    private: list[_Figure] = field(default_factory=list)
    planted: dict[str, list[str]] = field(default_factory=dict)


class DemoMirror:
    """A local stand-in for every source and portal acnedata knows, for the offline demo.

    Commons, Zenodo and Hugging Face are what the quick demo uses. Openverse, ISIC, a web
    gallery, data.go.kr (odcloud), Kaggle (both wire formats) and AI Hub answer too, for the
    all-sources demo; their images are drawn on first use, so the quick demo does not pay for them.

    `planted` maps each deliberate problem kind to the titles (Commons) that carry it; for
    duplicates it lists the copies, and `duplicate_of` maps each copy to its original. The
    cross-class duplicate lists both titles, since both should end up in conflict.
    `planted_more` lists the traps of the other sources (see `_build_more`).
    """

    def __init__(self, per_class: int = 24, seed: int = 0):
        if per_class < MIN_PER_CLASS:
            raise ValueError(
                f"per_class must be at least {MIN_PER_CLASS} to leave room for the "
                f"planted problems, got {per_class}"
            )
        self.per_class, self.seed = per_class, seed
        self.counts: dict[str, int] = {}
        self.planted: dict[str, list[str]] = {k: [] for k in PLANTED_KINDS}
        self.duplicate_of: dict[str, str] = {}
        self.titles_by_class: dict[str, list[str]] = {}
        self._items: dict[str, _Item] = {}  # by title
        self._by_path: dict[str, _Item] = {}
        self._ranked: dict[str, list[_Item]] = {}
        self._thumbs: dict[str, tuple[bytes, str]] = {}
        self._lock = threading.Lock()
        self._more: _More | None = None
        self._more_lock = threading.Lock()  # two first requests must not both draw the images
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        spec = load_spec("acne-l70")
        self._terms = {c.name: [t.lower() for t in c.all_terms()] for c in spec.classes}
        if tuple(self._terms) != CLASSES:
            raise RuntimeError(
                f"acne-l70 classes {list(self._terms)} differ from the classes "
                f"the demo can draw {list(CLASSES)}"
            )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> DemoMirror:
        """Generate the images, bind 127.0.0.1 on a free port and serve from a daemon thread."""
        if self._server is not None:
            return self
        if not self._items:
            self._build()
        handler = type("_BoundHandler", (_Handler,), {"mirror": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="acnedata-demo-mirror", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> DemoMirror:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def total_requests(self) -> int:
        """All requests answered so far, on every path."""
        with self._lock:
            return sum(self.counts.values())

    def media_url(self, title: str) -> str:
        """The full-size file URL of a Commons title, as the API reports it (without utm)."""
        return self.base_url + quote(self._items[title].media_path)

    def pageid(self, title: str) -> int:
        """The Commons page id of a title: the catalog keys Commons items as commons:<pageid>."""
        return self._items[title].pageid

    def _count(self, path: str) -> None:
        with self._lock:
            self.counts[path] = self.counts.get(path, 0) + 1

    # -- content -----------------------------------------------------------------------------

    def _build(self) -> None:
        rng = random.Random(f"acnedata-demo:{self.seed}")
        next_id = iter(range(81_000_001 + 1000 * (self.seed % 1000), 10**9))
        counter = {c: 0 for c in CLASSES}

        def new_item(
            cls: str,
            img: Image.Image,
            *,
            licence: str | None = None,
            fmt: str = "JPEG",
            private: bool = False,
        ) -> _Item:
            counter[cls] += 1
            ext = "png" if fmt == "PNG" else "jpg"
            site = rng.choice(_SITES)
            title = f"File:{cls.capitalize()} acne {site} demo {self.seed}-{counter[cls]:03d}.{ext}"
            body = _encode(img, fmt)
            user_no = rng.randint(1, 9)
            item = _Item(
                pageid=next(next_id),
                title=title,
                cls=cls,
                media_path="",
                body=body,
                content_type=f"image/{'png' if fmt == 'PNG' else 'jpeg'}",
                mime=f"image/{'png' if fmt == 'PNG' else 'jpeg'}",
                width=img.width,
                height=img.height,
                licence=licence or _pick_licence(rng),
                user=f"Demo Photographer {user_no}",
                site=site,
                utm=rng.random() < 0.35,
            )
            fname = item.filename
            if private:
                item.media_path = f"/media/private/{fname}"
            else:
                h = hashlib.md5(fname.encode()).hexdigest()
                item.media_path = f"/media/{h[0]}/{h[:2]}/{fname}"
            return item

        def fresh(cls: str, **kw: Any) -> _Item:
            img = draw_lesion_image(cls, rng.randrange(2**31), size=rng.choice((256, 256, 288)))
            fmt = "PNG" if rng.random() < 0.15 else "JPEG"
            return new_item(cls, img, fmt=kw.pop("fmt", fmt), **kw)

        def copy_of(orig: _Item, cls: str, kind: str) -> _Item:
            # Same bytes under a new title: built from a placeholder, then given orig's file.
            item = new_item(cls, Image.new("RGB", (1, 1)))
            item.body, item.width, item.height = orig.body, orig.width, orig.height
            item.content_type, item.mime = orig.content_type, orig.mime
            self.duplicate_of[item.title] = orig.title
            self.planted[kind].append(item.title)
            return item

        def near(orig: _Item, cls: str, kind: str) -> _Item:
            src = Image.open(io.BytesIO(orig.body))
            copy = _near_copy_within(src, kind, rng.randrange(2**31))
            item = new_item(cls, copy, fmt="JPEG")
            self.duplicate_of[item.title] = orig.title
            self.planted["near_duplicate"].append(item.title)
            return item

        def planted(kind: str, item: _Item) -> _Item:
            self.planted[kind].append(item.title)
            return item

        lists: dict[str, list[_Item]] = {c: [] for c in CLASSES}
        # Each class carries a few of the problems, so every class's search shows several stages
        # at work; the per-class lists are then filled up with clean items to per_class.
        come = [fresh("comedonal", fmt="JPEG") for _ in range(2)]
        robots = fresh("comedonal", fmt="JPEG", private=True)
        lists["comedonal"] += [
            *come,
            copy_of(come[0], "comedonal", "exact_duplicate"),
            near(come[1], "comedonal", "crop"),
            planted("licence_unknown", fresh("comedonal", licence="Unknown")),
            planted("robots_disallowed", robots),
        ]
        pap = [fresh("papular", fmt="JPEG") for _ in range(2)]
        corrupt_p = fresh("papular", fmt="JPEG")
        corrupt_p.body = corrupt_p.body[: len(corrupt_p.body) * 2 // 5]
        lists["papular"] += [
            *pap,
            near(pap[0], "papular", "recompress"),
            planted("licence_rejected", fresh("papular", licence="CC BY-NC-ND 4.0")),
            planted("corrupt", corrupt_p),
        ]
        self.planted["cross_class_duplicate"].append(pap[1].title)
        pus = [fresh("pustular", fmt="JPEG")]
        html = fresh("pustular", fmt="JPEG")
        html.body = _HTML_ERROR
        shared = fresh("pustular", fmt="JPEG")
        lists["pustular"] += [
            *pus,
            copy_of(pus[0], "pustular", "exact_duplicate"),
            planted("licence_unknown", fresh("pustular", licence="missing")),
            planted("html_as_image", html),
            copy_of(pap[1], "pustular", "cross_class_duplicate"),
            planted("same_item_two_classes", shared),
        ]
        nod = [fresh("nodulocystic", fmt="JPEG")]
        corrupt_n = fresh("nodulocystic", fmt="JPEG")
        corrupt_n.body = corrupt_n.body[: len(corrupt_n.body) // 2]
        lists["nodulocystic"] += [
            *nod,
            near(nod[0], "nodulocystic", "brightness"),
            planted("licence_rejected", fresh("nodulocystic", licence="CC BY-NC 4.0")),
            planted("corrupt", corrupt_n),
            shared,
        ]
        # The broken and the robots-disallowed files report their own URL as thumbnail too, so
        # whichever URL a client picks, it meets the problem.
        for item in (corrupt_p, corrupt_n, html, robots):
            item.thumbable = False
        for cls in CLASSES:
            while len(lists[cls]) < self.per_class:
                lists[cls].append(fresh(cls))
            # Rank order mixes the planted items in among the clean ones, across result pages.
            rng.shuffle(lists[cls])
            self._ranked[cls] = lists[cls]
            self.titles_by_class[cls] = [i.title for i in lists[cls]]
            for item in lists[cls]:
                self._items[item.title] = item
                self._by_path[item.media_path] = item

    # -- handlers ----------------------------------------------------------------------------

    def route(
        self,
        method: str,
        raw_path: str,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request: (status, headers, body). Public so it can be tested without I/O."""
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        self._count(path)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        lower = {k.lower(): v for k, v in (headers or {}).items()}
        more = self._route_more(method, path, params, lower, body)
        if more is not None:
            return more
        if path == API_PATH:
            return self._commons_api(params)
        if path == ZENODO_PATH:
            return self._zenodo(params)
        if path.startswith(ZENODO_PATH + "/"):
            rec = next((r for r in self._zenodo_records() if f"/{r['id']}" == path[12:]), None)
            return _json(rec) if rec else _not_found(path)
        if path == HF_PATH:
            return self._huggingface(params)
        if path == "/robots.txt":
            return 200, {"Content-Type": "text/plain; charset=utf-8"}, ROBOTS_TXT.encode()
        if path.startswith("/wiki/"):
            return self._file_page(path[len("/wiki/") :])
        if path.startswith("/media/thumb/"):
            return self._thumb(path)
        item = self._by_path.get(path)
        if item is not None:
            return 200, {"Content-Type": item.content_type}, item.body
        return _not_found(path)

    def _commons_api(self, p: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        v2 = p.get("formatversion", "1") in ("2", "latest")
        if p.get("action") != "query":
            return _mw_error(
                "badvalue", f'Unrecognized value for parameter "action": {p.get("action", "")}.', v2
            )
        if p.get("generator") != "search":
            return _mw_error("badvalue", "The demo mirror only answers generator=search.", v2)
        if "gsrsearch" not in p:
            return _mw_error("missingparam", 'The "gsrsearch" parameter must be set.', v2)
        if p.get("gsrnamespace", "0") != "6":
            return _json({"batchcomplete": True if v2 else ""})
        text = p["gsrsearch"].lower()
        limit_raw = p.get("gsrlimit", "10")
        try:
            limit = 500 if limit_raw == "max" else max(1, min(500, int(limit_raw)))
            offset = max(0, int(p.get("gsroffset", "0")))
        except ValueError:
            return _mw_error("badinteger", "Invalid value for gsrlimit or gsroffset.", v2)
        hits: list[_Item] = []
        seen: set[int] = set()
        for cls in CLASSES:
            if any(term in text for term in self._terms[cls]):
                for item in self._ranked[cls]:
                    if item.pageid not in seen:
                        seen.add(item.pageid)
                        hits.append(item)
        batch = hits[offset : offset + limit]
        out: dict[str, Any] = {"batchcomplete": True if v2 else ""}
        if offset + limit < len(hits):
            out["continue"] = {"gsroffset": offset + limit, "continue": "gsroffset||"}
        if batch:
            pages = [self._page(item, offset + i + 1, p) for i, item in enumerate(batch)]
            if v2:
                # The real API gives pages in no particular order; clients must sort by index.
                random.Random(f"{self.seed}:{text}:{offset}").shuffle(pages)
                out["query"] = {"pages": pages}
            else:
                out["query"] = {"pages": {str(pg["pageid"]): pg for pg in pages}}
        return _json(out)

    def _page(self, item: _Item, index: int, p: dict[str, str]) -> dict[str, Any]:
        props = set(p.get("iiprop", "timestamp|user").split("|"))
        info: dict[str, Any] = {}
        if "timestamp" in props:
            info["timestamp"] = f"2021-0{1 + item.pageid % 9}-1{item.pageid % 10}T10:00:00Z"
        if "user" in props:
            info["user"] = item.user
        if "size" in props:
            info.update(size=len(item.body), width=item.width, height=item.height)
        if "url" in props:
            utm = "?utm_source=commons.wikimedia.org&utm_campaign=imageinfo&utm_content="
            url = self.base_url + quote(item.media_path)
            width = p.get("iiurlwidth", "")
            if width.isdigit() and int(width) > 0:
                tw = int(width)
                if item.thumbable and tw < item.width:
                    th = round(item.height * tw / item.width)
                    thumb = self.base_url + quote(_thumb_path(item, tw))
                else:  # like MediaWiki, no upscaling: the "thumbnail" is the original
                    tw, th, thumb = item.width, item.height, url
                info.update(
                    thumburl=thumb + (utm + "thumbnail" if item.utm else ""),
                    thumbwidth=tw,
                    thumbheight=th,
                )
            info["url"] = url + (utm + "original" if item.utm else "")
            info["descriptionurl"] = (
                self.base_url + "/wiki/" + quote(item.title.replace(" ", "_"), safe="/:")
            )
            info["descriptionshorturl"] = f"{self.base_url}/w/index.php?curid={item.pageid}"
        if "mime" in props:
            info["mime"] = item.mime
        if "extmetadata" in props:
            wanted = p.get("iiextmetadatafilter")
            meta = self._extmetadata(item)
            if wanted:
                keep = set(wanted.split("|"))
                meta = {k: v for k, v in meta.items() if k in keep}
            info["extmetadata"] = meta
        return {
            "pageid": item.pageid,
            "ns": 6,
            "title": item.title,
            "index": index,
            "imagerepository": "local",
            "imageinfo": [info],
        }

    def _extmetadata(self, item: _Item) -> dict[str, dict[str, str]]:
        def entry(value: str, source: str = "commons-desc-page") -> dict[str, str]:
            return {"value": value, "source": source, "hidden": ""}

        user_page = f"{self.base_url}/wiki/User:{quote(item.user.replace(' ', '_'))}"
        meta = {
            "ObjectName": entry(item.title[5:].rsplit(".", 1)[0], "mediawiki-metadata"),
            "ImageDescription": entry(
                f"<p>{item.cls.capitalize()} acne on the {item.site} "
                f"(<i>synthetic image from the acnedata demo</i>).</p>"
            ),
            "Artist": entry(f'<a href="{user_page}" title="User:{item.user}">{item.user}</a>'),
            "Credit": entry('<span class="int-own-work" lang="en">Own work</span>'),
        }
        for key, value in _LICENCES[item.licence].items():
            if value is not None:
                meta[key] = entry(
                    value, "commons-templates" if key == "License" else "commons-desc-page"
                )
        return meta

    def _file_page(self, name: str) -> tuple[int, dict[str, str], bytes]:
        item = self._items.get(name.replace("_", " "))
        if item is None:
            return _not_found("/wiki/" + name)
        lic = _LICENCES[item.licence]["LicenseShortName"] or "no licence given"
        html = (
            f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{item.title}</title>'
            f'</head><body><h1>{item.title}</h1><p><img src="{quote(item.media_path)}" '
            f'alt="" width="{item.width}"></p><p>Author: {item.user}. Licence: {lic}.</p>'
            "</body></html>\n"
        )
        return 200, {"Content-Type": "text/html; charset=utf-8"}, html.encode()

    def _thumb(self, path: str) -> tuple[int, dict[str, str], bytes]:
        # /media/thumb/a/ab/Name.jpg/128px-Name.jpg, the upload.wikimedia.org layout.
        orig_path, _, last = path[len("/media/thumb") :].rpartition("/")
        item = self._by_path.get("/media" + orig_path)
        px, _, rest = last.partition("px-")
        if item is None or not px.isdigit() or rest != item.filename or not item.thumbable:
            return _not_found(path)
        width = int(px)
        if not 0 < width < item.width:
            return _not_found(path)
        key = f"{item.title}|{width}"
        with self._lock:
            cached = self._thumbs.get(key)
        if cached is None:
            img = Image.open(io.BytesIO(item.body)).convert("RGB")
            img = img.resize((width, round(item.height * width / item.width)), Image.LANCZOS)
            fmt = "PNG" if item.mime == "image/png" else "JPEG"
            cached = (_encode(img, fmt), item.content_type)
            with self._lock:
                self._thumbs[key] = cached
        return 200, {"Content-Type": cached[1]}, cached[0]

    # -- portals -----------------------------------------------------------------------------

    def _mentions_acne(self, text: str) -> bool:
        text = text.lower()
        words = ("acne", "여드름", *(t for terms in self._terms.values() for t in terms))
        return any(w in text for w in words)

    def _zenodo_records(self) -> list[dict[str, Any]]:
        base = self.base_url

        def record(
            rid: int, title: str, licence: str, files: list[tuple[str, int]], description: str
        ) -> dict[str, Any]:
            return {
                "id": rid,
                "doi": f"10.5281/zenodo.{rid}",
                "created": "2024-03-01T10:00:00+00:00",
                "updated": "2024-03-02T10:00:00+00:00",
                "links": {
                    "self": f"{base}{ZENODO_PATH}/{rid}",
                    "self_html": f"{base}/records/{rid}",
                },
                "metadata": {
                    "title": title,
                    "publication_date": "2024-03-01",
                    "description": description,
                    "access_right": "open",
                    "creators": [{"name": "Demo, Researcher", "affiliation": "Demo University"}],
                    "resource_type": {"title": "Dataset", "type": "dataset"},
                    "license": {"id": licence},
                    "keywords": ["acne", "dermatology", "여드름"],
                },
                "files": [
                    {
                        "key": key,
                        "size": size,
                        "checksum": "md5:" + hashlib.md5(key.encode()).hexdigest(),
                        "links": {"self": f"{base}{ZENODO_PATH}/{rid}/files/{key}/content"},
                    }
                    for key, size in files
                ],
            }

        # Neither record fits acne-l70's policy (no NC/ND; "other" is no licence we recognise),
        # so the demo's portal check reports them and goes on to collect.
        return [
            record(
                10001,
                "Facial acne photographs (non-commercial, no derivatives)",
                "cc-by-nc-nd-4.0",
                [("acne_photos.zip", 48_213_552)],
                "<p>Clinical photographs of acne vulgaris, graded by lesion type.</p>",
            ),
            record(
                10002,
                "Acne lesion images from a dermatology clinic",
                "other",
                [("images.tar.gz", 131_072_000), ("labels.csv", 20_480)],
                "<p>Images of comedonal, papular and pustular acne; terms of use on request.</p>",
            ),
        ]

    def _zenodo(self, p: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        try:
            page = max(1, int(p.get("page", "1")))
            size = max(1, min(25, int(p.get("size", "10"))))  # 25: Zenodo's anonymous cap
        except ValueError:
            return _json({"status": 400, "message": "Invalid page or size."}, status=400)
        records = self._zenodo_records() if self._mentions_acne(p.get("q", "")) else []
        if p.get("type") not in (None, "", "dataset"):
            records = []
        chunk = records[(page - 1) * size : page * size]

        def link(n: int) -> str:
            return f"{self.base_url}{ZENODO_PATH}?" + urlencode({**p, "page": n, "size": size})

        links = {"self": link(page)}
        if page * size < len(records):
            links["next"] = link(page + 1)
        if page > 1:
            links["prev"] = link(page - 1)
        return _json(
            {"hits": {"hits": chunk, "total": len(records)}, "links": links, "aggregations": {}}
        )

    def _hf_datasets(self, full: bool) -> list[dict[str, Any]]:
        def dataset(
            repo: str, licence: str, tags: list[str], card: dict[str, Any], about_acne: bool
        ) -> dict[str, Any]:
            entry: dict[str, Any] = {
                "_id": hashlib.md5(repo.encode()).hexdigest()[:24],
                "id": repo,
                "author": repo.split("/")[0],
                "sha": hashlib.sha1(repo.encode()).hexdigest(),
                "lastModified": "2024-11-25T20:07:28.000Z",
                "private": False,
                "gated": False,
                "disabled": False,
                "downloads": 812,
                "likes": 4,
                "tags": [*tags, f"license:{licence}", "modality:image", "region:us"],
                "createdAt": "2024-10-01T00:00:00.000Z",
                "key": "",
                "_about_acne": about_acne,  # internal, removed before serving
            }
            if full:
                entry["cardData"] = {"license": licence, **card}
                entry["siblings"] = [
                    {"rfilename": ".gitattributes"},
                    {"rfilename": "README.md"},
                    {"rfilename": "data/train-00000-of-00001.parquet"},
                ]
            return entry

        return [
            dataset(
                "demo-org/acne-faces",
                "unknown",
                ["task_categories:image-classification", "size_categories:1K<n<10K"],
                {"pretty_name": "Acne faces", "task_categories": ["image-classification"]},
                True,
            ),
            # Not about acne: only found by its own name, so paging has something to page over.
            dataset(
                "demo-org/skin-tone-swatches",
                "other",
                ["size_categories:n<1K"],
                {"pretty_name": "Skin tone swatches"},
                False,
            ),
        ]

    def _huggingface(self, p: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        full = p.get("full", "").lower() in ("1", "true") or p.get("cardData", "").lower() in (
            "1",
            "true",
        )
        search = p.get("search", "").lower()
        found = []
        for ds in self._hf_datasets(full):
            about_acne = ds.pop("_about_acne")
            hit = search in ds["id"].lower() or (about_acne and self._mentions_acne(search))
            if hit and p.get("author", ds["author"]) == ds["author"]:
                found.append(ds)
        try:
            start = 0
            if p.get("cursor"):
                start = int(json.loads(base64.urlsafe_b64decode(p["cursor"]))["offset"])
            limit = int(p["limit"]) if p.get("limit") else len(found) or 1
        except (ValueError, KeyError, TypeError):
            return _json({"error": "Invalid cursor or limit"}, status=400)
        chunk = found[start : start + max(1, limit)]
        headers = {}
        if start + len(chunk) < len(found):
            cursor = base64.urlsafe_b64encode(json.dumps({"offset": start + len(chunk)}).encode())
            nxt = urlencode({**p, "cursor": cursor.decode()})
            headers["Link"] = f'<{self.base_url}{HF_PATH}?{nxt}>; rel="next"'
        status, h, body = _json(chunk)
        return status, {**h, **headers}, body

    # -- the other sources: content ----------------------------------------------------------

    def extras(self) -> _More:
        """Openverse, ISIC and gallery content and files, drawn on first use."""
        with self._more_lock:
            if self._more is None:
                self._more = self._build_more()
            return self._more

    @property
    def planted_more(self) -> dict[str, list[str]]:
        """Traps beyond Commons: Openverse ids, ISIC ids, gallery file and page paths."""
        return self.extras().planted

    def _build_more(self) -> _More:
        # A generator of its own, so the Commons items stay exactly what they were before.
        rng = random.Random(f"acnedata-demo-more:{self.seed}")
        more = _More(
            planted={
                "openverse_noncommercial": [],  # by-nc: outside the client's licence filter
                "openverse_no_derivatives": [],  # by-nd: only served when asked for
                "isic_noncommercial": [],  # CC-BY-NC: found, then rejected by the policy
                "gallery_noncommercial": [],  # a figure with its own CC BY-NC licence link
                "gallery_noimageindex": [GALLERY_PRIVATE],  # the page that must yield nothing
                "gallery_private_files": [],  # files on that page: never to be requested
            }
        )

        def put(path: str, img: Image.Image, fmt: str = "JPEG") -> _Asset:
            mime = "image/png" if fmt == "PNG" else ("image/gif" if fmt == "GIF" else "image/jpeg")
            buf = io.BytesIO()
            if fmt == "JPEG":
                img.save(buf, "JPEG", quality=90)
            else:
                img.save(buf, fmt)
            asset = _Asset(buf.getvalue(), mime, img.width, img.height)
            more.assets[path] = asset
            return asset

        def draw(cls: str, size: int) -> Image.Image:
            return draw_lesion_image(cls, rng.randrange(2**31), size=size)

        # Openverse: a few images per class under the licences its filter would ask for, plus a
        # by-nc and a by-nd image that only a request naming their licence gets back.
        n = 0
        for cls in CLASSES:
            items: list[_OvItem] = []
            for _ in range(OV_PER_CLASS):
                code, version = _OV_LICENCES[n % len(_OV_LICENCES)]
                items.append(self._ov_item(rng, put, draw, n, cls, code, version))
                n += 1
            if cls == "papular":
                trap = self._ov_item(rng, put, draw, n, cls, "by-nc", "4.0")
                more.planted["openverse_noncommercial"].append(trap.id)
                items.insert(1, trap)
                n += 1
            if cls == "pustular":
                trap = self._ov_item(rng, put, draw, n, cls, "by-nd", "4.0")
                more.planted["openverse_no_derivatives"].append(trap.id)
                items.insert(1, trap)
                n += 1
            more.openverse += items

        # ISIC: clinical "epidermal cyst" images that the demo's nodulocystic query finds, among
        # dermoscopic nevi it must not find; ids ascend, as the cursor pages through them.
        base_id = 9_100_000 + 100 * (self.seed % 100)
        for k, (licence, attribution, wanted) in enumerate(_ISIC_PLAN, 1):
            isic_id = f"ISIC_{base_id + k:07d}"
            img = draw("nodulocystic" if wanted else "papular", rng.choice((320, 352)))
            full = put(f"/isic/images/{isic_id}.jpg", img)
            thumb = put(
                f"/isic/thumbnails/{isic_id}_thumbnail_256.jpg",
                img.resize((256, 256), Image.LANCZOS),
            )
            clinical: dict[str, Any] = {
                "age_approx": rng.choice((15, 20, 25, 30)),
                "sex": rng.choice(("female", "male")),
                "anatom_site_general": "head/neck" if wanted else "posterior torso",
                "diagnosis_1": "Benign",
            }
            if wanted:
                clinical.update(
                    diagnosis_2="Cysts",
                    diagnosis_3="Infundibular or epidermal cyst",
                    diagnosis_confirm_type="clinical only",
                )
            else:
                clinical.update(
                    diagnosis_2="Benign melanocytic proliferations",
                    diagnosis_3="Nevus",
                    melanocytic=True,
                    diagnosis_confirm_type="single image expert consensus",
                )
            item = _IsicItem(
                isic_id=isic_id,
                licence=licence,
                attribution=attribution,
                full=f"/isic/images/{isic_id}.jpg",
                thumb=f"/isic/thumbnails/{isic_id}_thumbnail_256.jpg",
                full_size=len(full.body),
                thumb_size=len(thumb.body),
                width=img.width,
                height=img.height,
                image_type="clinical: close-up" if wanted else "dermoscopic",
                clinical=clinical,
            )
            if wanted and licence == "CC-BY-NC":
                more.planted["isic_noncommercial"].append(isic_id)
            more.isic.append(item)

        # The web gallery: one page per class and a page 2, each <img> naming its file another
        # way (srcset, lazy data-src, a link to the file, plain src).
        for cls in CLASSES:
            captions = iter(_captions(cls, rng))
            large = draw(cls, 384)
            put(f"/gallery/img/{cls}-1-384.jpg", large)
            put(f"/gallery/img/{cls}-1-192.jpg", large.resize((192, 192), Image.LANCZOS))
            put(f"/gallery/img/{cls}-2.jpg", draw(cls, 320))
            full = draw(cls, 320)
            put(f"/gallery/img/{cls}-3.jpg", full)
            put(f"/gallery/img/{cls}-3-thumb.jpg", full.resize((160, 160), Image.LANCZOS))
            first = [
                _Figure(
                    "srcset",
                    next(captions),
                    (f"/gallery/img/{cls}-1-384.jpg", f"/gallery/img/{cls}-1-192.jpg"),
                ),
                _Figure("lazy", next(captions), (f"/gallery/img/{cls}-2.jpg",)),
                _Figure(
                    "link",
                    next(captions),
                    (f"/gallery/img/{cls}-3.jpg", f"/gallery/img/{cls}-3-thumb.jpg"),
                ),
            ]
            if cls == "papular":
                path = f"/gallery/img/{cls}-nc.jpg"
                put(path, draw(cls, 288))
                first.insert(
                    2,
                    _Figure(
                        "plain",
                        "Papular acne on the chin, shared for non-commercial use only",
                        (path,),
                        ("https://creativecommons.org/licenses/by-nc/4.0/", "CC BY-NC 4.0"),
                    ),
                )
                more.planted["gallery_noncommercial"].append(path)
            second = []
            for k in (4, 5):
                path = f"/gallery/img/{cls}-{k}.jpg"
                put(path, draw(cls, 288))
                second.append(_Figure("plain", next(captions), (path,)))
            more.galleries[cls] = [first, second]
        for k in (1, 2):
            path = f"/gallery/private/patient-{k}.jpg"
            put(path, draw("nodulocystic", 256))
            more.private.append(_Figure("plain", f"Patient {k}, before treatment", (path,)))
            more.planted["gallery_private_files"].append(path)
        badge = Image.new("RGB", (88, 31), (170, 170, 170))
        put(GALLERY_PATH + "badges/cc-by.png", badge, "PNG")
        put(GALLERY_PATH + "px.gif", Image.new("L", (1, 1), 255), "GIF")
        return more

    def _ov_item(
        self,
        rng: random.Random,
        put: Callable[..., _Asset],
        draw: Callable[[str, int], Image.Image],
        n: int,
        cls: str,
        code: str,
        version: str,
    ) -> _OvItem:
        digest = hashlib.md5(f"openverse:{self.seed}:{n}".encode()).hexdigest()
        ident = "-".join((digest[:8], digest[8:12], digest[12:16], digest[16:20], digest[20:32]))
        path = f"/openverse/media/{ident}.jpg"
        asset = put(path, draw(cls, rng.choice((256, 320))))
        site = rng.choice(_SITES)
        return _OvItem(
            id=ident,
            cls=cls,
            title=f"{cls.capitalize()} acne on the {site}",
            creator=f"Demo Flickr User {rng.randint(1, 9)}",
            licence=code,
            version=version,
            path=path,
            width=asset.width,
            height=asset.height,
            size=len(asset.body),
            tags=[f"{cls} acne", "skin", "dermatology"],
        )

    # -- the other sources: endpoints --------------------------------------------------------

    def _route_more(
        self, method: str, path: str, p: dict[str, str], headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes] | None:
        """Answer a request for Openverse, ISIC, the gallery or the Korean/Kaggle portals."""
        if path == DATAGOKR_PATH:
            return self._datagokr(p, headers)
        if path == KAGGLE_LIST_PATH:
            return self._kaggle_current(method, headers, body)
        if path == KAGGLE_LEGACY_PATH:
            return self._kaggle_legacy(p, headers)
        if path == AIHUB_PATH:
            text = "".join(f"{key},{name}\n" for key, name in _AIHUB_DATASETS)
            return 200, {"Content-Type": "text/plain;charset=UTF-8"}, text.encode("utf-8")
        if path == OPENVERSE_TOKEN_PATH:
            return self._openverse_token(method, p, headers, body)
        if path == OPENVERSE_PATH:
            return self._openverse(p, headers)
        if path.startswith(OPENVERSE_PATH):
            return self._openverse_detail(path[len(OPENVERSE_PATH) :])
        if path == ISIC_PATH:
            return self._isic(p)
        if path.startswith(("/openverse/", "/isic/", "/images/ISIC_", GALLERY_PATH)):
            more = self.extras()
            asset = more.assets.get(path)
            if asset is not None:
                return 200, {"Content-Type": asset.content_type}, asset.body
            if path.startswith("/openverse/photos/"):
                item = next((i for i in more.openverse if i.id == path.rsplit("/", 1)[1]), None)
                if item is not None:
                    return _html(
                        item.title,
                        f'<p><img src="{item.path}" alt=""></p><p>By {item.creator}.</p>',
                    )
            if path.startswith("/images/ISIC_"):
                isic_id = path.strip("/").split("/")[1]
                item_i = next((i for i in more.isic if i.isic_id == isic_id), None)
                if item_i is not None:
                    return _html(
                        isic_id,
                        f'<p><img src="{item_i.thumb}" alt=""></p>'
                        f"<p>{item_i.clinical.get('diagnosis_3', '')}. "
                        f"Attribution: {item_i.attribution}. "
                        f"Licence: {item_i.licence}.</p>",
                    )
            if path.startswith(GALLERY_PATH):
                return self._gallery(path, p)
            return _not_found(path)
        return None

    def _openverse_record(self, item: _OvItem) -> dict[str, Any]:
        base = self.base_url
        if item.licence in ("cc0", "pdm"):
            kind = "zero" if item.licence == "cc0" else "mark"
            url = f"https://creativecommons.org/publicdomain/{kind}/{item.version}/"
            name = "CC0" if item.licence == "cc0" else "Public Domain Mark"
            terms = f"is marked with {name} {item.version}. To view the terms, visit {url}."
        else:
            url = f"https://creativecommons.org/licenses/{item.licence}/{item.version}/"
            terms = (
                f"is licensed under CC {item.licence.upper()} {item.version}. "
                f"To view a copy of this license, visit {url}."
            )
        return {
            "id": item.id,
            "title": item.title,
            "indexed_on": "2023-05-04T12:00:00Z",
            "foreign_landing_url": f"{base}/openverse/photos/{item.id}",
            "url": base + item.path,
            "creator": item.creator,
            "creator_url": f"{base}/openverse/people/{quote(item.creator.replace(' ', '_'))}",
            "license": item.licence,
            "license_version": item.version,
            "license_url": url,
            "provider": "demo_flickr",
            "source": "demo_flickr",
            "category": "photograph",
            "genre": None,
            "filesize": item.size,
            "filetype": "jpg",
            "tags": [
                {"name": t, "accuracy": None, "unstable__provider": "demo_flickr"}
                for t in item.tags
            ],
            "alt_files": None,
            "attribution": f'"{item.title}" by {item.creator} {terms}',
            "fields_matched": ["title", "tags.name"],
            "mature": False,
            "height": item.height,
            "width": item.width,
            "thumbnail": f"{base}{OPENVERSE_PATH}{item.id}/thumb/",
            "detail_url": f"{base}{OPENVERSE_PATH}{item.id}/",
            "related_url": f"{base}{OPENVERSE_PATH}{item.id}/related/",
            "unstable__sensitivity": [],
        }

    def _openverse(self, p: dict[str, str], headers: dict[str, str]) -> _Reply:
        for old in ("li", "lt", "pagesize", "provider"):  # renamed years ago; now refused
            if old in p:
                return _json({"detail": f"The parameter '{old}' is no longer supported."}, 400)
        auth = headers.get("authorization", "")
        if auth and auth != f"Bearer {DEMO_OPENVERSE_TOKEN}":
            return _json({"detail": "Invalid token."}, 401)
        try:
            page_size = int(p.get("page_size") or 20)
            page = int(p.get("page") or 1)
        except ValueError:
            return _json({"page_size": ["A valid integer is required."]}, 400)
        if page_size > OV_ANON_PAGE_SIZE and not auth:
            # DRF's NotAuthenticated: a 401 although nothing was wrong with any credential.
            return _json({"detail": "page_size may not exceed 20 for anonymous requests"}, 401)
        if not 1 <= page_size <= 500:
            return _json({"page_size": ["Ensure this value is less than or equal to 500."]}, 400)
        if not 1 <= page <= OV_MAX_PAGES:
            return _json(
                {"page": [f"Ensure this value is less than or equal to {OV_MAX_PAGES}."]}, 400
            )
        q = p.get("q", "")
        if len(q) > 200:
            return _json({"q": ["Ensure this field has no more than 200 characters."]}, 400)
        codes = [c.strip().lower() for c in p.get("license", "").split(",") if c.strip()]
        bad = next((c for c in codes if c not in OV_CODES), None)
        if bad is not None:
            return _json({"license": [f"License '{bad}' does not exist."]}, 400)
        text = q.lower()
        hits = [
            item
            for item in self.extras().openverse
            if (
                any(t in text for t in self._terms[item.cls])
                or (text and text in item.title.lower())
            )
            and (not codes or item.licence in codes)
        ]
        page_count = min(OV_MAX_PAGES, math.ceil(len(hits) / page_size))
        chunk = hits[(page - 1) * page_size : page * page_size]
        return _json(
            {
                "result_count": len(hits),
                "page_count": page_count,
                "page_size": page_size,
                "page": page,
                "results": [self._openverse_record(i) for i in chunk],
                "warnings": [],
            }
        )

    def _openverse_detail(self, rest: str) -> tuple[int, dict[str, str], bytes]:
        ident, _, tail = rest.partition("/")
        item = next((i for i in self.extras().openverse if i.id == ident), None)
        if item is None:
            return _json({"detail": "Not found."}, 404)
        if tail == "":
            return _json(self._openverse_record(item))
        if tail == "thumb/":
            asset = self.extras().assets[item.path]
            return 200, {"Content-Type": asset.content_type}, asset.body
        return _json({"detail": "Not found."}, 404)

    def _openverse_token(
        self, method: str, p: dict[str, str], headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if method != "POST":
            return _json({"detail": f'Method "{method}" not allowed.'}, 405)
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        form = {**p, **form}  # the grant type may come in the query or the form body
        client = (form.get("client_id", ""), form.get("client_secret", ""))
        auth = headers.get("authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                client = (user, secret)
            except (ValueError, UnicodeDecodeError):
                client = ("", "")
        if form.get("grant_type") != "client_credentials":
            return _json({"error": "unsupported_grant_type"}, 400)
        if client != DEMO_OPENVERSE_CLIENT:
            return _json({"error": "invalid_client"}, 401)
        return _json(
            {
                "access_token": DEMO_OPENVERSE_TOKEN,
                "scope": "read write groups",
                "expires_in": 36000,
                "token_type": "Bearer",
            }
        )

    def _isic_record(self, item: _IsicItem) -> dict[str, Any]:
        # files.*.url are pre-signed CDN links in the real API: they carry a signature and expire.
        sig = hashlib.sha256(item.isic_id.encode()).hexdigest()[:32]
        signed = f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600&X-Amz-Signature={sig}"
        acquisition: dict[str, Any] = {"pixels_x": item.width, "pixels_y": item.height}
        if item.image_type == "dermoscopic":
            acquisition.update(image_type="dermoscopic", dermoscopic_type="contact polarized")
        else:
            acquisition["image_type"] = item.image_type
        return {
            "isic_id": item.isic_id,
            "public": True,
            "copyright_license": item.licence,
            "attribution": item.attribution,
            "files": {
                "full": {"url": self.base_url + item.full + signed, "size": item.full_size},
                "thumbnail_256": {
                    "url": self.base_url + item.thumb + signed,
                    "size": item.thumb_size,
                },
            },
            "metadata": {"acquisition": acquisition, "clinical": dict(item.clinical)},
        }

    def _isic(self, p: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        query = p.get("query", "")
        try:
            match = _isic_predicate(query)
        except ValueError as exc:
            return _json({"detail": f"Unable to parse search query '{query}': {exc}"}, 400)
        try:
            limit = max(1, min(100, int(p.get("limit") or 100)))
        except ValueError:
            return _json({"detail": "limit must be an integer"}, 400)
        after, before = "", ""
        if p.get("cursor"):
            try:
                cursor = parse_qs(base64.b64decode(p["cursor"], validate=True).decode())
            except (ValueError, UnicodeDecodeError):
                return _json({"detail": "Invalid cursor."}, 400)
            position = cursor.get("p", [""])[0]
            if cursor.get("r", ["0"])[0] == "1":
                before = position
            else:
                after = position
        hits = [i for i in self.extras().isic if match(self._isic_record(i))]
        if before:
            earlier = [i for i in hits if i.isic_id < before]
            chunk = earlier[-limit:]
        else:
            chunk = [i for i in hits if i.isic_id > after][:limit]

        def link(position: str, reverse: bool = False) -> str:
            raw = f"r=1&p={position}" if reverse else f"p={position}"
            params = {"cursor": base64.b64encode(raw.encode()).decode(), "limit": limit}
            params.update({k: p[k] for k in ("query", "collections") if p.get(k)})
            return f"{self.base_url}{ISIC_PATH}?{urlencode(params)}"

        later = bool(chunk) and chunk[-1].isic_id < hits[-1].isic_id
        first_page = not p.get("cursor")
        return _json(
            {
                # Counting is expensive on the real archive: only the first page carries it.
                "count": len(hits) if first_page else None,
                "next": link(chunk[-1].isic_id) if later else None,
                "previous": link(chunk[0].isic_id, reverse=True)
                if chunk and not first_page and chunk[0].isic_id > hits[0].isic_id
                else None,
                "results": [self._isic_record(i) for i in chunk],
            }
        )

    def _gallery(self, path: str, p: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        more = self.extras()
        if path == GALLERY_PRIVATE:
            return _html(
                "Patient photographs (not for reuse)",
                _figures_html(more.private),
                head='<meta name="robots" content="noimageindex">',
            )
        cls = path[len(GALLERY_PATH) :].removesuffix(".html")
        if cls not in more.galleries or not path.endswith(".html"):
            return _not_found(path)
        pages = more.galleries[cls]
        number = p.get("page", "1")
        if not number.isdigit() or not 1 <= int(number) <= len(pages):
            return _not_found(f"{path}?page={number}")
        index = int(number) - 1
        nxt = f"{GALLERY_PATH}{cls}.html?page={index + 2}" if index + 1 < len(pages) else ""
        head = '<meta name="author" content="Demo Dermatology Clinic">'
        if nxt:
            head += f'\n<link rel="next" href="{nxt}">'
        nav = f'<nav><a rel="next" href="{nxt}">Next page</a></nav>' if nxt else ""
        body = (
            f"<main>{_figures_html(pages[index])}</main>\n"
            '<img src="px.gif" width="1" height="1" alt="">\n'
            f"{nav}\n"
            '<footer><a rel="license" href="https://creativecommons.org/licenses/by/4.0/">'
            '<img src="badges/cc-by.png" alt="Creative Commons License" width="88" height="31">'
            "</a> Unless a photo says otherwise, the photos on this page are licensed under a "
            "Creative Commons Attribution 4.0 International License.</footer>"
        )
        title = f"{cls.capitalize()} acne photo gallery" + (f", page {number}" if index else "")
        return _html(title, body, head=head)

    # -- the other portals -------------------------------------------------------------------

    def _datagokr(self, p: dict[str, str], headers: dict[str, str]) -> _Reply:
        key = p.get("serviceKey") or headers.get("authorization", "").removeprefix("Infuser ")
        # The odcloud gateway's codes: -4 unregistered key, -3 key not approved for the service.
        if key == DEMO_SERVICE_KEY_UNAPPROVED:
            return _json({"code": -3, "msg": "등록되지 않은 서비스 입니다."}, 401)
        if key != DEMO_SERVICE_KEY:
            return _json({"code": -4, "msg": "등록되지 않은 인증키 입니다."}, 401)
        try:
            page = int(p.get("page") or 1)
            per_page = int(p.get("perPage") or 10)
            if page < 1 or per_page < 1:
                raise ValueError
        except ValueError:
            return _json({"code": -2, "msg": "요청하신 파라미터가 적합하지 않습니다."}, 400)
        rows = [self._odcloud_row(r) for r in _ODCLOUD_ROWS]
        like = p.get("cond[title::LIKE]", "").strip().casefold()
        matched = [r for r in rows if like in str(r["title"]).casefold()]
        chunk = matched[(page - 1) * per_page : page * per_page]
        return _json(
            {
                "page": page,
                "perPage": per_page,
                "totalCount": len(rows),
                "currentCount": len(chunk),
                "matchCount": len(matched),
                "data": chunk,
            }
        )

    def _odcloud_row(self, row: dict[str, Any]) -> dict[str, Any]:
        out = dict(row)
        out["page_url"] = f"{self.base_url}/data/{row['id']}/fileData.do"
        return out

    def _kaggle_authorised(self, headers: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        if auth == f"Bearer {DEMO_KAGGLE_TOKEN}":
            return True
        if auth.startswith("Basic "):
            try:
                user, _, key = base64.b64decode(auth[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return (user, key) == DEMO_KAGGLE_BASIC
        return False

    def _kaggle_found(self, search: str) -> list[dict[str, Any]]:
        words = search.casefold().split()
        return [
            d
            for d in _KAGGLE_DATASETS
            if all(w in f"{d['ref']} {d['title']} {d['subtitle']}".casefold() for w in words)
        ]

    def _kaggle_item(self, d: dict[str, Any], *, current: bool) -> dict[str, Any]:
        owner = d["ref"].split("/")[0]
        item = {
            "id": d["id"],
            "ref": d["ref"],
            "title": d["title"],
            "subtitle": d["subtitle"],
            "url": f"{self.base_url}/datasets/{d['ref']}",
            "creatorName": d["creator"],
            "creatorUrl": owner,
            "ownerName": d["creator"],
            "ownerRef": owner,
            "totalBytes": d["bytes"],
            "lastUpdated": "2024-02-11T08:15:42.57Z",
            "downloadCount": 1234,
            "voteCount": 17,
            "viewCount": 8800,
            "kernelCount": 3,
            "topicCount": 1,
            "isPrivate": False,
            "isFeatured": False,
            "currentVersionNumber": 2,
            "usabilityRating": 0.75,
            "licenseName": d["licence"],
            "tags": [{"ref": t.replace(" ", "-"), "name": t} for t in d["tags"]],
            "description": d["subtitle"] + ".",
        }
        if current:
            # protobuf JSON: int64 fields are strings, and false/empty fields are left out.
            item["totalBytes"] = str(d["bytes"])
            item = {k: v for k, v in item.items() if v not in (False, None, "", [])}
        return item

    def _kaggle_current(
        self, method: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if method != "POST":
            return _json({"code": 12, "message": f"Method {method} not allowed"}, 405)
        if not self._kaggle_authorised(headers):
            return _json({"code": 16, "message": "Unauthenticated"}, 401)
        try:
            request = json.loads(body or b"{}")
            if not isinstance(request, dict):
                raise ValueError
            page = int(request.get("page") or 1)
            size = int(request.get("pageSize") or KAGGLE_PAGE_SIZE)
        except (ValueError, TypeError):
            return _json({"code": 3, "message": "Invalid JSON payload received."}, 400)
        found = self._kaggle_found(str(request.get("search") or ""))
        chunk = found[(page - 1) * size : page * size]
        if not chunk:
            return _json({})  # protobuf JSON drops an empty repeated field altogether
        return _json({"datasets": [self._kaggle_item(d, current=True) for d in chunk]})

    def _kaggle_legacy(self, p: dict[str, str], headers: dict[str, str]) -> _Reply:
        if not self._kaggle_authorised(headers):
            return _json({"code": 401, "message": "Unauthorized access"}, 401)
        try:
            page = max(1, int(p.get("page") or 1))
        except ValueError:
            return _json({"code": 400, "message": "page must be an integer"}, 400)
        found = self._kaggle_found(p.get("search", ""))
        chunk = found[(page - 1) * KAGGLE_PAGE_SIZE : page * KAGGLE_PAGE_SIZE]
        return _json([self._kaggle_item(d, current=False) for d in chunk])


class _Handler(BaseHTTPRequestHandler):
    """Thin I/O shell around DemoMirror.route; HTTP/1.1 keep-alive so clients reuse sockets."""

    mirror: DemoMirror
    protocol_version = "HTTP/1.1"
    server_version = "acnedata-demo-mirror/1.0"
    timeout = 15  # an idle keep-alive connection frees its thread after this many seconds

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_POST(self) -> None:
        self._answer(head=False)

    def _answer(self, *, head: bool) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            sent = self.rfile.read(length) if length > 0 else b""
            status, headers, body = self.mirror.route(
                self.command, self.path, dict(self.headers.items()), sent
            )
        except Exception as exc:  # a mirror bug must show up as a 500, not a hung client
            status, headers = 500, {"Content-Type": "text/plain; charset=utf-8"}
            body = f"demo mirror error: {exc!r}\n".encode()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the demo prints its own summary; per-request logs would drown it


def _pick_licence(rng: random.Random) -> str:
    names, weights = zip(*_CLEAN_LICENCES, strict=True)
    return rng.choices(names, weights)[0]


def _encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "PNG":
        img.save(buf, "PNG", compress_level=1)
    else:
        img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _near_copy_within(img: Image.Image, kind: str, seed: int, max_distance: int = 4) -> Image.Image:
    """A near copy whose perceptual hash stays well inside any sensible dedup threshold.

    A small share of random crops/brightness shifts move pHash by 6-8 bits on these flat skin
    images; trying a few seeds keeps the planted near duplicate unambiguous for the dedup stage.
    """
    base = imagehash.phash(img)
    best, best_d = None, 65
    for attempt in range(8):
        cand = near_copy(img, kind, seed + attempt)
        d = base - imagehash.phash(Image.open(io.BytesIO(_encode(cand, "JPEG"))))
        if d < best_d:
            best, best_d = cand, d
        if d <= max_distance:
            break
    assert best is not None
    return best


def _thumb_path(item: _Item, width: int) -> str:
    return f"/media/thumb{item.media_path[len('/media') :]}/{width}px-{item.filename}"


def _json(obj: Any, status: int = 200) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return status, {"Content-Type": "application/json; charset=utf-8"}, body


def _mw_error(code: str, info: str, v2: bool) -> tuple[int, dict[str, str], bytes]:
    # MediaWiki reports API errors in a 200 response; only the body says something went wrong.
    err: dict[str, Any] = {"code": code, "info": info}
    if not v2:
        err["*"] = "See the API help for usage."
    return _json({"error": err, "servedby": "demo-mirror"})


def _not_found(path: str) -> tuple[int, dict[str, str], bytes]:
    return 404, {"Content-Type": "text/plain; charset=utf-8"}, f"404 Not Found: {path}\n".encode()


# -- the other sources: fixed content --------------------------------------------------------

OV_PER_CLASS = 4
OV_ANON_PAGE_SIZE = 20
OV_MAX_PAGES = 20  # Openverse serves no page beyond the 20th
OV_CODES = frozenset(
    {"by", "by-sa", "by-nd", "by-nc", "by-nc-sa", "by-nc-nd", "cc0", "pdm", "sampling+",
     "nc-sampling+"}
)  # fmt: skip
# The licences of the Openverse images the demo's policy accepts, in turn.
_OV_LICENCES = (
    ("by", "4.0"), ("by-sa", "2.0"), ("cc0", "1.0"),
    ("pdm", "1.0"), ("by-sa", "4.0"), ("by", "2.0"),
)  # fmt: skip
# (copyright_license, attribution, found by the demo's query) per ISIC image, in id order.
_ISIC_PLAN = (
    ("CC-BY", "Demo University Hospital, Department of Dermatology", True),
    ("CC-0", "Anonymous", False),
    ("CC-0", "Anonymous", True),
    ("CC-BY", "Demo Skin Imaging Consortium", True),
    ("CC-BY-NC", "Demo Private Dermatology Practice", True),
    ("CC-BY", "Demo University Hospital, Department of Dermatology", False),
    ("CC-BY", "Demo Skin Imaging Consortium", True),
    ("CC-BY-NC", "Demo Private Dermatology Practice", False),
)
_ISIC_FIELDS = frozenset(
    {*(f"diagnosis_{n}" for n in range(1, 6)), "age_approx", "sex", "diagnosis_confirm_type",
     "melanocytic", "image_type", "dermoscopic_type", "anatom_site_general", "copyright_license",
     "isic_id", "public"}
)  # fmt: skip
_ISIC_TOKEN = re.compile(
    r'\s*(?:(?P<field>\w+):(?P<value>"[^"]*"|\[[^\]]*\]|[^\s()"\[]+)'
    r"|(?P<op>AND|OR|NOT)(?=[\s(]|$)|(?P<paren>[()])|(?P<junk>\S+))"
)
# Gallery captions: the class's own words only, so the sort stage has no doubt about them.
_CAPTIONS = {
    "comedonal": (
        "Open comedones (blackheads) on the {site}",
        "Closed comedones (whiteheads) on the {site}",
        "Comedonal acne on the {site}",
        "Blackheads on the {site}, close-up",
        "Comedonal acne, whiteheads on the {site}",
    ),
    "papular": (
        "Papular acne on the {site}",
        "Inflamed acne papules on the {site}",
        "Papular acne on the {site}, close-up",
        "Acne papules on the {site}",
        "Papular acne on the {site}, side view",
    ),
    "pustular": (
        "Pustular acne on the {site}",
        "Acne pustules on the {site}",
        "Pustular acne on the {site}, close-up",
        "Papulopustular acne on the {site}",
        "Acne pustules on the {site}, side view",
    ),
    "nodulocystic": (
        "Nodulocystic acne on the {site}",
        "Cystic acne on the {site}",
        "Nodular acne on the {site}",
        "Cystic acne on the {site}, close-up",
        "Acne conglobata on the {site}",
    ),
}
_PLACEHOLDER = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"

DEMO_SERVICE_KEY_UNAPPROVED = "demo-key-not-approved-for-15077093"
# odcloud 15077093 /v1/dataset rows (page_url is added with the mirror's address). The real rows
# documented in sources.md carry no licence column; 이용허락범위 is added so the demo can show
# the KOGL verdict, as the portal reads it when present. None of them fits acne-l70's policy.
_ODCLOUD_ROWS: tuple[dict[str, Any], ...] = (
    {
        "id": 15099001,
        "title": "데모대학교병원_여드름 병변 임상 사진",
        "org_nm": "데모대학교병원",
        "new_category_nm": "보건",
        "ext": "JPG",
        "download_cnt": 57,
        "view_cnt": 1290,
        "updated_at": "2024-05-02T00:00:00",
        "desc": "여드름 병변 유형별 임상 사진 (데모)",
        "이용허락범위": "공공누리 제4유형",
    },
    {
        "id": 15099002,
        "title": "데모심사평가원_여드름 진료 현황",
        "org_nm": "데모심사평가원",
        "new_category_nm": "보건",
        "ext": "CSV",
        "download_cnt": 311,
        "view_cnt": 4022,
        "updated_at": "2024-09-30T00:00:00",
        "desc": "연도별 여드름(L70) 진료 인원과 진료비 (데모)",
        "이용허락범위": "이용허락범위 제한 없음",
    },
    {
        "id": 15001020,
        "title": "부산교통공사_부산도시철도 장애인 편의시설 정보",
        "org_nm": "부산교통공사",
        "new_category_nm": "교통물류",
        "ext": "JSON+XML",
        "download_cnt": 12,
        "view_cnt": 980,
        "updated_at": "2024-07-28T00:00:00",
        "desc": "역별 장애인 편의시설 현황",
        "이용허락범위": "이용허락범위 제한 없음",
    },
)
KAGGLE_PAGE_SIZE = 20
# The Kaggle listing: a "CC0" DermNet re-upload (the portal's provenance check flags it), an NC
# image set, a tabular survey, and one set no acne search finds.
_KAGGLE_DATASETS: tuple[dict[str, Any], ...] = (
    {
        "id": 4101001,
        "ref": "demo-uploader/dermnet-acne-images",
        "title": "DermNet acne images",
        "subtitle": "Acne photos collected from the DermNet atlas",
        "creator": "Demo Uploader",
        "bytes": 412_345_678,
        "licence": "CC0: Public Domain",
        "tags": ("image", "computer vision", "health"),
    },
    {
        "id": 4101002,
        "ref": "demo-lab/acne-severity-photos",
        "title": "Acne severity photos",
        "subtitle": "Graded facial acne photographs",
        "creator": "Demo Lab",
        "bytes": 98_765_432,
        "licence": "CC BY-NC-SA 4.0",
        "tags": ("image", "dermatology"),
    },
    {
        "id": 4101003,
        "ref": "demo-stats/acne-diet-survey",
        "title": "Acne and diet survey",
        "subtitle": "Questionnaire answers, one row per respondent",
        "creator": "Demo Stats",
        "bytes": 204_800,
        "licence": "Database: Open Database, Contents: © Original Authors",
        "tags": ("tabular", "health"),
    },
    {
        "id": 4101004,
        "ref": "demo-org/sunset-photos",
        "title": "Sunset photos",
        "subtitle": "Evening skies over the sea",
        "creator": "Demo Org",
        "bytes": 7_340_032,
        "licence": "CC0: Public Domain",
        "tags": ("image",),
    },
)
# AI Hub's catalogue: `datasetkey,name` lines, UTF-8, Korean names; one is about acne (여드름).
_AIHUB_DATASETS = (
    ("90001", "한국어 음성"),
    ("90002", "여드름 피부 이미지 데이터"),
    ("90003", "안면 피부 상태 측정 데이터"),
    ("90004", "도로 주행 영상"),
)


def _captions(cls: str, rng: random.Random) -> list[str]:
    return [c.format(site=rng.choice(_SITES)) for c in _CAPTIONS[cls]]


def _html(title: str, body: str, head: str = "") -> tuple[int, dict[str, str], bytes]:
    text = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>\n{head}\n</head>\n<body><h1>{escape(title)}</h1>\n"
        f"{body}\n</body></html>\n"
    )
    return 200, {"Content-Type": "text/html; charset=utf-8"}, text.encode("utf-8")


def _figures_html(figures: list[_Figure]) -> str:
    """The <figure>s of a gallery page, each naming its file the way its kind says."""
    out = []
    for fig in figures:
        cap = escape(fig.caption)
        if fig.kind == "srcset":
            big, small = fig.paths
            img = (
                f'<img src="{small}" srcset="{small} 192w, {big} 384w" '
                f'sizes="(min-width: 800px) 384px, 192px" alt="{cap}">'
            )
        elif fig.kind == "lazy":  # a lazy loader swaps data-src in; src is a 1-pixel stand-in
            img = f'<img class="lazyload" src="{_PLACEHOLDER}" data-src="{fig.paths[0]}" alt="">'
        elif fig.kind == "link":
            img = f'<a href="{fig.paths[0]}"><img src="{fig.paths[1]}" alt="" width="160"></a>'
        else:
            img = f'<img src="{fig.paths[0]}" alt="{cap}">'
        licence = ""
        if fig.licence:
            href, text = fig.licence
            licence = f'<p class="licence">Licence: <a rel="license" href="{href}">{text}</a></p>'
        out.append(f"<figure>{img}<figcaption>{cap}</figcaption>{licence}</figure>")
    return "\n".join(out)


def _isic_predicate(query: str) -> Callable[[dict[str, Any]], bool]:
    """A loose reading of the ISIC search DSL: field:value terms, AND binding tighter than OR.

    Parentheses are ignored; values compare case-insensitively: a quoted value must match whole,
    a trailing * matches a prefix, [a TO b] a numeric range and a bare word any word of the
    value. Unknown fields (like the retired flat `diagnosis:`) and unreadable text raise
    ValueError, which the mirror answers with a 400 as the archive does.
    """
    if query.count('"') % 2:
        raise ValueError("unbalanced quotes")
    disjuncts: list[list[tuple[str, str, bool]]] = [[]]
    negate = False
    for m in _ISIC_TOKEN.finditer(query):
        if m["junk"]:
            raise ValueError(f"cannot read {m['junk']!r}")
        if m["op"] == "OR":
            disjuncts.append([])
        elif m["op"] == "NOT":
            negate = True
        elif m["field"]:
            if m["field"] not in _ISIC_FIELDS:
                raise ValueError(f"unknown field {m['field']!r}")
            disjuncts[-1].append((m["field"], m["value"], negate))
            negate = False
    clauses = [d for d in disjuncts if d]

    def value_of(record: dict[str, Any], name: str) -> Any:
        if name in record:
            return record[name]
        meta = record.get("metadata", {})
        for group in ("clinical", "acquisition"):
            if name in meta.get(group, {}):
                return meta[group][name]
        return None

    def matches(actual: Any, value: str) -> bool:
        if actual is None:
            return False
        text = str(actual).casefold()
        if value.startswith("["):
            lo, _, hi = value[1:-1].partition(" TO ")
            try:
                x = float(actual)
                return (lo.strip() == "*" or x >= float(lo)) and (
                    hi.strip() == "*" or x <= float(hi)
                )
            except ValueError:
                return False
        if value.startswith('"'):
            return text == value[1:-1].casefold()
        if value.endswith("*"):
            return text.startswith(value[:-1].casefold())
        return value.casefold() in re.split(r"[\s:,/]+", text)

    def predicate(record: dict[str, Any]) -> bool:
        if not clauses:
            return True
        return any(
            all(matches(value_of(record, f), v) != neg for f, v, neg in clause)
            for clause in clauses
        )

    return predicate
