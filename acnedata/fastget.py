"""Bare GETs straight on urllib3's connection pool, shaped like requests' responses and errors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import requests
import urllib3
from requests import exceptions as rex
from urllib3 import exceptions as u3

# requests' own Retry for adapters: no retries (PoliteSession retries), no redirects followed.
_NO_RETRIES = urllib3.Retry(0, read=False, redirect=False)


def as_requests_error(exc: BaseException) -> rex.RequestException:
    """The requests exception that requests' adapter would raise for this urllib3 error.

    PoliteSession turns requests exceptions into per-item reasons; mapping here keeps one
    vocabulary of failures whichever path a request took.
    """
    if isinstance(exc, u3.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, u3.ReadTimeoutError):
        return rex.ReadTimeout(exc)
    if isinstance(exc, u3.NewConnectionError):  # a subclass of ConnectTimeoutError, oddly
        return rex.ConnectionError(exc)
    if isinstance(exc, u3.ConnectTimeoutError):
        return rex.ConnectTimeout(exc)
    if isinstance(exc, u3.SSLError):
        return rex.SSLError(exc)
    if isinstance(exc, u3.DecodeError):
        return rex.ContentDecodingError(exc)
    if isinstance(exc, u3.LocationParseError):
        return rex.InvalidURL(exc)
    if isinstance(exc, u3.ProxyError):
        return rex.ProxyError(exc)
    if isinstance(exc, (u3.HTTPError, OSError)):
        return rex.ConnectionError(exc)
    return rex.RequestException(exc)


class LeanResponse:
    """What PoliteSession reads of a requests.Response, over a raw urllib3 response."""

    def __init__(self, raw: urllib3.BaseHTTPResponse, url: str):
        self.raw = raw
        self.url = url
        self.status_code = raw.status
        self.headers = raw.headers  # case-insensitive, like requests' CaseInsensitiveDict
        self._content: bytes | None = None
        self._content_consumed = False

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        """The decoded body in chunks; urllib3 errors raised as requests' iter_content would."""
        try:
            yield from self.raw.stream(chunk_size, decode_content=True)
        except u3.ProtocolError as exc:
            raise rex.ChunkedEncodingError(exc) from None
        except u3.DecodeError as exc:
            raise rex.ContentDecodingError(exc) from None
        except u3.ReadTimeoutError as exc:
            raise rex.ConnectionError(exc) from None
        except u3.SSLError as exc:
            raise rex.SSLError(exc) from None
        self._content_consumed = True

    @property
    def content(self) -> bytes | None:
        return self._content

    def close(self) -> None:
        """Back to the pool when the body was read to the end; otherwise drop the connection."""
        if not self._content_consumed:
            self.raw.close()
        self.raw.release_conn()


def new_pool(maxsize: int) -> urllib3.PoolManager:
    """A thread-safe pool manager verifying TLS against the same CA bundle requests uses."""
    return urllib3.PoolManager(
        num_pools=64,
        maxsize=max(1, maxsize),
        block=False,
        retries=_NO_RETRIES,
        cert_reqs="CERT_REQUIRED",
        ca_certs=requests.certs.where(),
    )


def get(
    pool: urllib3.PoolManager, url: str, headers: Mapping[str, str], timeout: float
) -> LeanResponse:
    """One GET, body not read yet, no redirect followed; raises requests exceptions."""
    try:
        raw = pool.urlopen(
            "GET",
            url,
            headers=dict(headers),
            redirect=False,
            retries=_NO_RETRIES,
            preload_content=False,
            decode_content=True,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
        )
    except (u3.HTTPError, OSError) as exc:
        raise as_requests_error(exc) from None
    return LeanResponse(raw, url)
