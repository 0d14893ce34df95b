"""Human review: the review queue, a local review page on 127.0.0.1, and a decisions CSV."""

from __future__ import annotations

import csv
import hmac
import io
import ipaddress
import json
import mimetypes
import secrets
import signal
import sqlite3
import threading
import time
import webbrowser
from collections import Counter
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import typer
from PIL import Image

from acnedata.catalog import STORED, Catalog
from acnedata.errors import AcnedataError, SpecError
from acnedata.export import final_label, manifest_rows
from acnedata.pipeline import Collector
from acnedata.spec import DatasetSpec
from acnedata.suggestions import load_suggestions, match_suggestions, uncertainty_order

REJECT = "reject"
THUMB_SIZE = 240
# The files the page is made of; nothing else under the package is ever served.
PAGE_FILES = {
    "index.html": "text/html; charset=utf-8",
    "review.css": "text/css; charset=utf-8",
    "review.js": "text/javascript; charset=utf-8",
}
_PAGE_PACKAGE = "acnedata"
_PAGE_DIR = "review_page"
# What the page may load: only itself. There is no internet, and nothing should ever be fetched
# from elsewhere while a person looks at (possibly sensitive) clinical photographs.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_REPRESENTATIVE = "state = ? AND duplicate_of IS NULL"
MAX_ROW_ID = 2**63 - 1  # SQLite's largest integer: a bigger id names no item
MAX_BODY = 65536  # bytes: a decision is a few dozen
READ_DEADLINE = 10.0  # seconds a client may stall: per read for a request's head, in all for a body
TOKEN_HEADER = "X-Acnedata-Token"
_TOKEN_SLOT = b"{{session-token}}"  # where index.html receives the session's token


# --- decisions -------------------------------------------------------------------------------
def parse_decision(spec: DatasetSpec, value: str | None) -> str | None:
    """A decision as a person types it → what the catalog stores: class name, 'reject' or None.

    Accepts a class name or alias (any case), 'reject' or 'x', and '' / 'undo' / None to clear.
    """
    text = (value or "").strip()
    if text.lower() in ("", "undo"):
        return None
    if text.lower() in (REJECT, "x"):
        return REJECT
    try:
        return spec.class_named(text).name
    except SpecError:
        names = ", ".join(_class_words(spec))
        raise AcnedataError(
            f"{text!r} is not a class of {spec.name} ({names}); "
            "use a class, reject/x, or empty/undo to clear"
        ) from None


def _class_words(spec: DatasetSpec) -> list[str]:
    return [c.name + (f" ({'/'.join(c.aliases)})" if c.aliases else "") for c in spec.classes]


def _find_item(catalog: Catalog, ident: str | int) -> sqlite3.Row | None:
    """An item by its manifest id ("commons:123") or its numeric catalog id."""
    text = str(ident).strip()
    rows = catalog.items("key = ?", (text,))
    if rows:
        return rows[0]
    row_id = parse_row_id(text)
    return None if row_id is None else catalog.item(row_id)


def parse_row_id(text: str) -> int | None:
    """A numeric catalog id, or None for anything else (other digits, past SQLite's range)."""
    # isdigit() alone admits "²" and "٣", which int() refuses or reads as another number
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ROW_ID)):
        return None
    value = int(text)
    return value if value <= MAX_ROW_ID else None


def _decidable(catalog: Catalog, row: sqlite3.Row | None, ident: str) -> sqlite3.Row:
    """The row if a decision on it can reach the manifest; otherwise say why not, in one line."""
    if row is None:
        raise AcnedataError(f"no item with id {ident!r} in {catalog.path}")
    if row["state"] != STORED:
        raise AcnedataError(f"{row['key']} is not stored (state {row['state']}); nothing to decide")
    if row["duplicate_of"] is not None:
        rep = catalog.item(row["duplicate_of"])
        rep_key = rep["key"] if rep is not None else row["duplicate_of"]
        raise AcnedataError(
            f"{row['key']} is a duplicate of {rep_key}; decide on that one, it stands for both"
        )
    return row


def apply_decisions(out_dir: str | Path, csv_path: str | Path) -> dict[str, int]:
    """Apply a CSV of `id,decision` rows to the catalog, then rewrite the manifest.

    Every row is checked before any is applied, so a typo on row 40 leaves the catalog as it was.
    Returns counts: assigned, rejected, cleared, rows.
    """
    csv_path = Path(csv_path)
    try:
        text = csv_path.read_text(encoding="utf-8-sig")  # utf-8-sig: spreadsheets add a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise AcnedataError(f"{csv_path}: cannot read decisions ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = {(c or "").strip().lower() for c in reader.fieldnames or []}
    if not {"id", "decision"} <= columns:
        raise AcnedataError(
            f"{csv_path}: needs a header row with the columns id and decision "
            f"(found: {', '.join(sorted(columns)) or 'none'})"
        )
    with Collector.reopen(out_dir) as col:
        planned: list[tuple[int, str | None]] = []
        for raw in reader:
            row = {(k or "").strip().lower(): (v or "") for k, v in raw.items()}
            ident = row.get("id", "").strip()
            if not ident and not row.get("decision", "").strip():
                continue  # a blank line in a spreadsheet export
            where = f"{csv_path} line {reader.line_num}"
            try:
                item = _decidable(col.catalog, _find_item(col.catalog, ident), ident)
                planned.append((item["id"], parse_decision(col.spec, row.get("decision"))))
            except AcnedataError as exc:
                raise AcnedataError(f"{where}: {exc}") from None
        counts: Counter[str] = Counter(rows=len(planned))
        with col.catalog.transaction():
            for item_id, decision in planned:
                col.catalog.set_decision(item_id, decision)
                kind = "cleared" if decision is None else "rejected" if decision == REJECT else ""
                counts[kind or "assigned"] += 1
        col.write_manifest()
    return {k: counts.get(k, 0) for k in ("assigned", "rejected", "cleared", "rows")}


# --- the queue -------------------------------------------------------------------------------
def _mate(row: sqlite3.Row, found_for: list[str]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "key": row["key"],
        "file": row["file"],
        "title": row["title"],
        "source": row["source"],
        "page_url": row["page_url"],
        "label": row["label"],
        "found_for": found_for,
        "width": row["width"],
        "height": row["height"],
        "image": f"/image/{row['id']}",
        "thumb": f"/image/{row['id']}?thumb=1",
    }


def item_view(
    catalog: Catalog, row: sqlite3.Row, suggestion: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Everything a person needs to decide on one item, as JSON-ready data."""
    mates = catalog.items(
        "state = ? AND cluster = ? AND id != ?", (STORED, row["cluster"], row["id"])
    )
    return {
        **_mate(row, catalog.classes_of(row["id"])),
        "description": row["description"],
        "author": row["author"],
        "licence": {
            "spdx": row["spdx"] or "NOASSERTION",
            "url": row["licence_url"],
            "verdict": row["verdict"],
            "verdict_reason": row["verdict_reason"],
        },
        "cluster": row["cluster"],
        "review": row["review"],
        "label_reason": row["label_reason"],
        "decision": row["decision"],
        "final_label": final_label(row),
        "mates": [_mate(m, catalog.classes_of(m["id"])) for m in mates],
        "suggestion": suggestion,
    }


def review_queue(
    catalog: Catalog,
    *,
    include_decided: bool = False,
    suggestions: dict[int, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Stored representatives that wait for a person (review set, no decision), in catalog order.

    With include_decided, review items already decided come too, so the page can go back to them.
    With suggestions (item id → a classifier's suggestion), every item that has one joins the
    queue, and the queue runs from the least confident suggestion to the most, so a person fixes
    the doubtful ones first.
    """
    where = _REPRESENTATIVE
    if not include_decided:
        where += " AND decision IS NULL"
    suggestions = suggestions or {}
    rows = [
        r
        for r in catalog.items(where, (STORED,))
        if r["review"] is not None or r["id"] in suggestions
    ]
    items = [item_view(catalog, r, suggestions.get(r["id"])) for r in rows]
    return uncertainty_order(items) if suggestions else items


def contact_sheet(catalog: Catalog, spec: DatasetSpec, klass: str) -> list[dict[str, Any]]:
    """Every item bound for the manifest that currently carries class `klass` (name or alias)."""
    name = spec.class_named(klass).name
    return [
        _mate(r, [])
        | {"decision": r["decision"], "label_reason": r["label_reason"], "final_label": name}
        for r in manifest_rows(catalog)
        if final_label(r) == name
    ]


# --- the server ------------------------------------------------------------------------------
class ReviewServer:
    """The review page and its JSON API on 127.0.0.1; decisions go to the catalog at once."""

    def __init__(
        self,
        out_dir: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        suggestions: str | Path | None = None,
        *,
        read_deadline: float = READ_DEADLINE,
    ):
        if not _is_loopback(host):
            raise AcnedataError(
                f"--host {host}: the review page serves clinical images and writes decisions; "
                "it listens on 127.0.0.1 only"
            )
        self.out = Path(out_dir)
        doc = load_suggestions(suggestions) if suggestions is not None else None
        self.collector = Collector.reopen(self.out)
        self.catalog = self.collector.catalog
        self.suggestions: dict[int, dict[str, Any]] = {}
        if doc is not None:
            self.suggestions = match_suggestions(
                self.catalog.items(_REPRESENTATIVE, (STORED,)), self.out, doc
            )
        self.spec = self.collector.spec
        self.images = (self.out / "images").resolve()
        # One lock for every use of the one SQLite connection: handler threads take turns, so a
        # decision is committed before its reply and never interleaves with another request.
        self.lock = threading.Lock()
        self.undo_stack: list[tuple[int, str | None]] = []  # (item id, decision before)
        self.manifest: Path | None = None
        # A client that stops sending (a Content-Length it never fills, half a request line)
        # is cut off after this long instead of holding a handler thread forever.
        self.read_deadline = read_deadline
        # Sent with every POST by the page it is embedded in; a page elsewhere cannot read it.
        self.token = secrets.token_urlsafe(24)
        self._thread: threading.Thread | None = None
        self._stopped = False
        try:
            self.httpd = _HTTPServer((host, port), _Handler)
        except OSError as exc:
            self.collector.close()
            raise AcnedataError(f"cannot listen on {host}:{port} ({exc}); try --port 0") from None
        self.httpd.review = self

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def decisions_made(self) -> int:
        """Decisions of this session still standing (each undo takes one back)."""
        return len(self.undo_stack)

    def start(self) -> ReviewServer:
        """Serve in a background thread (tests, embedding); `serve_forever` for the CLI."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> Path | None:
        """Stop serving, rewrite the manifest from the catalog, close. Safe to call twice."""
        if self._stopped:
            return self.manifest
        self._stopped = True
        if self._thread is not None:
            # shutdown() waits for a running serve_forever loop; never call it without one.
            self.httpd.shutdown()
            self._thread.join()
        self.httpd.server_close()
        try:
            with self.lock:
                self.manifest = self.collector.write_manifest()
        finally:
            self.collector.close()
        return self.manifest

    def __enter__(self) -> ReviewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what the handlers call (always under self.lock) --------------------------------------
    def queue(self) -> dict[str, Any]:
        items = review_queue(self.catalog, include_decided=True, suggestions=self.suggestions)
        return {
            "name": self.spec.name,
            "items": items,
            "total": len(items),
            "decided": sum(1 for i in items if i["decision"]),
        }

    def classes(self) -> list[dict[str, Any]]:
        return [
            {"name": c.name, "aliases": list(c.aliases), "key": str(n) if n <= 9 else None}
            for n, c in enumerate(self.spec.classes, 1)
        ]

    def decide(self, ident: Any, decision: Any) -> dict[str, Any]:
        if not isinstance(ident, (str, int)) or isinstance(ident, bool):
            raise AcnedataError("id: give an item id (number) or key")
        if decision is not None and not isinstance(decision, str):
            raise AcnedataError("decision: give a class name, reject, or null to clear")
        row = _decidable(self.catalog, _find_item(self.catalog, ident), str(ident))
        new = parse_decision(self.spec, decision)
        with self.catalog.transaction():  # committed before the reply: a crash loses nothing
            self.catalog.set_decision(row["id"], new)
        self.undo_stack.append((row["id"], row["decision"]))
        return self.view(row["id"])

    def view(self, item_id: int) -> dict[str, Any]:
        return item_view(self.catalog, self.catalog.item(item_id), self.suggestions.get(item_id))

    def undo(self) -> dict[str, Any] | None:
        if not self.undo_stack:
            return None
        item_id, before = self.undo_stack.pop()
        with self.catalog.transaction():
            self.catalog.set_decision(item_id, before)
        return self.view(item_id)

    def image_path(self, item_id: int) -> Path | None:
        row = self.catalog.item(item_id)
        if row is None or not row["file"]:
            return None
        path = (self.out / row["file"]).resolve()
        # The file column comes from the catalog, but a tampered or foreign catalog must still
        # not turn this into a file server for the rest of the disk.
        if not path.is_relative_to(self.images) or not path.is_file():
            return None
        return path


class _HTTPServer(ThreadingHTTPServer):
    # Daemon handler threads are not joined on close: a browser's spare connection that never
    # sends a request would otherwise hold Ctrl-C for READ_DEADLINE (tests/test_review.py).
    daemon_threads = True
    review: ReviewServer


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "acnedata-review"

    def setup(self) -> None:
        self.timeout = self.server.review.read_deadline  # per read, until the body's deadline
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the terminal shows the URL and the final count, not one line per thumbnail

    # --- plumbing -------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str, *, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "private, max-age=3600" if cache else "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", _CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _host_ok(self) -> bool:
        # DNS rebinding guard: a web page elsewhere could resolve its own name to 127.0.0.1 and
        # post decisions; it cannot make the browser send our Host header.
        port = self.server.review.port
        return self.headers.get("Host", "") in (f"127.0.0.1:{port}", f"localhost:{port}")

    def _post_allowed(self) -> bool:
        """The session's token, and no Origin but our own: defence in depth behind the Host
        check and the JSON-only rule (a browser always sends Origin with a POST)."""
        port = self.server.review.port
        origin = self.headers.get("Origin")
        if origin is not None and origin not in (
            f"http://127.0.0.1:{port}",
            f"http://localhost:{port}",
        ):
            return False
        token = self.headers.get(TOKEN_HEADER, "")
        return hmac.compare_digest(token.encode(), self.server.review.token.encode())

    def _body(self) -> bytes | None:
        """The request body, whole, within the read deadline; None once an error was sent."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._error(400, "Content-Length must be a number of bytes")
            return None
        if length > MAX_BODY:
            self.close_connection = True  # the unread body must not be taken for a request
            self._error(413, f"a request body may be {MAX_BODY} bytes at most")
            return None
        deadline = time.monotonic() + self.server.review.read_deadline
        body, status = b"", 400  # a body cut short by the client
        try:
            while len(body) < length:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self.connection.settimeout(left)
                chunk = self.rfile.read1(length - len(body))
                if not chunk:
                    break
                body += chunk
        except TimeoutError:
            status = 408
        self.connection.settimeout(self.server.review.read_deadline)
        if len(body) < length:
            self.close_connection = True
            self._error(status, f"got {len(body)} of the {length} bytes Content-Length announced")
            return None
        return body

    # --- GET ------------------------------------------------------------------------------
    def do_GET(self) -> None:
        if not self._host_ok():
            return self._error(403, "wrong Host header; open the URL the command printed")
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        review = self.server.review
        try:
            if path in ("/", "/index.html"):
                return self._page("index.html")
            if path.startswith("/static/"):
                return self._page(path[len("/static/") :])
            if path == "/api/queue":
                with review.lock:
                    return self._json(200, review.queue())
            if path == "/api/classes":
                return self._json(200, {"classes": review.classes()})
            if path == "/api/sheet":
                klass = query.get("class", [""])[0]
                with review.lock:
                    name = review.spec.class_named(klass).name
                    items = contact_sheet(review.catalog, review.spec, name)
                return self._json(200, {"class": name, "items": items})
            if path.startswith("/image/"):
                return self._image(path[len("/image/") :], "thumb" in query)
            if path == "/favicon.ico":
                return self._send(204, b"", "image/x-icon")  # browsers ask; no 404 in the console
        except AcnedataError as exc:
            return self._error(400, str(exc))
        return self._error(404, f"{path}: not found")

    do_HEAD = do_GET

    def _page(self, name: str) -> None:
        if name not in PAGE_FILES:
            return self._error(404, f"{name}: not found")
        body = (resources.files(_PAGE_PACKAGE) / _PAGE_DIR / name).read_bytes()
        body = body.replace(_TOKEN_SLOT, self.server.review.token.encode())
        return self._send(200, body, PAGE_FILES[name])

    def _image(self, ident: str, thumb: bool) -> None:
        row_id = parse_row_id(ident)
        if row_id is None:
            return self._error(404, "images are addressed by numeric item id")
        review = self.server.review
        with review.lock:
            path = review.image_path(row_id)
        if path is None:
            return self._error(404, f"item {ident}: no stored image")
        if thumb:
            return self._send(200, _thumbnail(str(path)), "image/jpeg", cache=True)
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return self._send(200, path.read_bytes(), ctype, cache=True)

    # --- POST -----------------------------------------------------------------------------
    def do_POST(self) -> None:
        if not self._host_ok():
            return self._error(403, "wrong Host header; open the URL the command printed")
        # Only JSON bodies: a cross-site form cannot send application/json without a CORS
        # preflight, which this server never answers.
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            return self._error(415, "send JSON (Content-Type: application/json)")
        if not self._post_allowed():
            self.close_connection = True
            return self._error(403, "not this session's page; reload the URL the command printed")
        body = self._body()
        if body is None:
            return None
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return self._error(400, "the body is not JSON")
        if not isinstance(data, dict):
            return self._error(400, "send a JSON object")
        review = self.server.review
        path = urlsplit(self.path).path
        try:
            if path == "/api/decide":
                with review.lock:
                    item = review.decide(data.get("id"), data.get("decision"))
                return self._json(200, {"item": item, "decisions": review.decisions_made})
            if path == "/api/undo":
                with review.lock:
                    item = review.undo()
                if item is None:
                    return self._error(409, "nothing to undo in this session")
                return self._json(200, {"item": item, "decisions": review.decisions_made})
        except AcnedataError as exc:
            return self._error(400, str(exc))
        return self._error(404, f"{path}: not found")


@lru_cache(maxsize=1024)
def _thumbnail(path: str) -> bytes:
    # Files are content-addressed (named by their sha256), so a path's thumbnail never changes.
    with Image.open(path) as im:
        im.draft("RGB", (THUMB_SIZE, THUMB_SIZE))  # JPEG: decode at reduced size, much faster
        rgb = im.convert("RGB")
        rgb.thumbnail((THUMB_SIZE, THUMB_SIZE))
        buf = io.BytesIO()
        rgb.save(buf, "JPEG", quality=80)
        return buf.getvalue()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.version == 4 and address.is_loopback


# --- command line ----------------------------------------------------------------------------
def review_command(
    out: Annotated[Path, typer.Argument(help="An output folder written by `acnedata collect`.")],
    decisions: Annotated[
        Path | None,
        typer.Option(
            "--decisions",
            help="Apply a CSV with columns id,decision (class, reject, or empty to clear) "
            "instead of opening the page.",
        ),
    ] = None,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the URL but do not open a browser.")
    ] = False,
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (0: any free port).")] = 0,
    suggestions: Annotated[
        Path | None,
        typer.Option(
            "--suggestions",
            help="A classifier's predictions (`acnemodel predict RUN IMAGES... --json`): shown "
            "beside each item, every predicted item queued, the least confident first.",
        ),
    ] = None,
) -> None:
    """Review conflicts, doubtful classes and unclear licences in the browser, or from a CSV."""
    if decisions is not None:
        counts = apply_decisions(out, decisions)
        typer.echo(
            f"applied {_n(counts['rows'], 'decision')}: {counts['assigned']} assigned, "
            f"{counts['rejected']} rejected, {counts['cleared']} cleared; "
            f"manifest rewritten: {out / 'manifest.json'}"
        )
        return
    server = ReviewServer(out, port=port, suggestions=suggestions)
    with server.lock:
        waiting = len(review_queue(server.catalog, suggestions=server.suggestions))
    note = ""
    if suggestions is not None:
        note = f", {_n(len(server.suggestions), 'suggestion')} matched, least confident first"
    typer.echo(
        f"review page: {server.url}  ({_n(waiting, 'item')} to review{note}; Ctrl-C to finish)"
    )
    _sigterm_as_interrupt()
    try:
        if not no_browser:
            webbrowser.open(server.url)
        server.serve_forever()
    except KeyboardInterrupt:
        pass  # the normal way to finish: fall through to writing the manifest
    finally:
        manifest = server.stop()
    typer.echo(f"{_n(server.decisions_made, 'decision')} made; manifest rewritten: {manifest}")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _sigterm_as_interrupt() -> None:
    # `kill` (or a closing terminal's SIGTERM) should end like Ctrl-C: manifest rewritten.
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
