"""DemoMirror: a loopback HTTP server shaped like Commons, Zenodo and Hugging Face, with traps."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import threading
from dataclasses import dataclass
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


class DemoMirror:
    """A local stand-in for Wikimedia Commons, Zenodo and Hugging Face, for the offline demo.

    `planted` maps each deliberate problem kind to the titles (Commons) that carry it; for
    duplicates it lists the copies, and `duplicate_of` maps each copy to its original. The
    cross-class duplicate lists both titles, since both should end up in conflict.
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

    def route(self, method: str, raw_path: str) -> tuple[int, dict[str, str], bytes]:
        """Answer one request: (status, headers, body). Public so it can be tested without I/O."""
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        self._count(path)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
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

    def _answer(self, *, head: bool) -> None:
        try:
            status, headers, body = self.mirror.route(self.command, self.path)
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
