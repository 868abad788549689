"""The caller-ID page: a patient's card in the browser, on this computer only (``crm-analysis serve``).

Korean CTI and phone software can open a URL when a call comes in; this module
answers that URL from the card index (:mod:`crm_analysis.profile.card_index`,
read through :mod:`crm_analysis.profile.card_store`)::

    GET /card?phone=01012345678      the cards of everyone with that number
    GET /card?patient_id=P0000042    one patient's card
    GET /                            a search box (a GET form to /card)

The page shows personal data, so:

- it listens on a loopback address only (:func:`check_loopback`);
- every request carries the install's token (:func:`load_or_create_token`): once
  in the URL (``?token=``, answered by a 303 redirect that sets an HttpOnly,
  SameSite=Strict cookie and drops the token from the URL), or in an
  ``X-CRM-Token`` / ``Authorization: Bearer`` header, or in that cookie. Anything
  else gets a 403 page that says nothing about any patient;
- every lookup, found or not, is written to the access log
  (:class:`~crm_analysis.profile.access_log.AccessLog`) before the card is sent,
  and so is every refused request (``query="refused"``); the phone number never
  is, and the server's console lines carry no query string;
- every response forbids caching, framing, type sniffing, referrers, scripts and
  outside resources (:func:`security_headers`), and every text from the data is
  HTML-escaped.

The store is opened per request (a small SQLite file: well under a millisecond),
so no connection is shared between the server's request threads, and an index
replaced by the monthly or daily run is served from the next request on. Given
an outreach folder instead of a file, the server serves the newest index in it
(the daily run writes each day's into a new folder).

This module imports only the standard library and the card store.
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import os
import secrets
import socket
import socketserver
import stat
import sys
import threading
import time
from datetime import date
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit

from crm_analysis.profile.access_log import AccessLog
from crm_analysis.profile.card_index import INDEX_NAME
from crm_analysis.profile.card_store import CardStore, card_sections, find_index, first_line

__all__ = ["CardServer", "check_loopback", "load_or_create_token", "default_token_path", "security_headers",
           "TOKEN_ENV_VAR", "USUAL_TOKEN_PATH", "COOKIE_NAME", "DEFAULT_PORT"]

#: Environment variable that moves the token file.
TOKEN_ENV_VAR = "CRM_ANALYSIS_SERVE_TOKEN_FILE"

#: The token file's usual place, under the home folder.
USUAL_TOKEN_PATH = Path("~") / ".crm_analysis" / "serve_token"

#: The cookie that holds the token after it was given once in the URL.
COOKIE_NAME = "crm_analysis_token"

DEFAULT_PORT = 8765

# Chrome keeps no cookie longer than 400 days; rotating the token ends it sooner.
_COOKIE_MAX_AGE = 400 * 24 * 3600
_PATHS = ("/", "/card")
_LANGS = ("ko", "en")

_TEXT = {
    "ko": {
        "title": "환자 카드", "index": "카드 색인 {as_of} 기준 ({days}일 전)",
        "phone": "전화번호", "patient_id": "환자 번호", "search": "찾기",
        "count": "이 번호의 환자 {n}명", "not_found": "등록된 환자가 없습니다",
        "bad_phone": "전화번호 형식이 올바르지 않습니다. 010-1234-5678, 01012345678, +82 10-1234-5678처럼 입력하세요.",
        "no_query": "전화번호나 환자 번호를 입력하세요.",
        "both": "전화번호와 환자 번호 중 하나만 입력하세요.",
        "refused": "이 페이지를 볼 권한이 없습니다. crm-analysis serve가 시작할 때 알려 준 주소(토큰 포함)를 "
                   "이 브라우저에서 한 번 여세요.",
        "not_here": "없는 페이지입니다.", "moved": "이동합니다.",
        "no_index": "카드 색인을 열 수 없습니다. 월간 실행이나 crm-analysis daily로 다시 만드세요.",
        "no_log": "접근 기록을 남길 수 없어 카드를 보여 주지 않습니다. 관리자에게 알리세요.",
        "error": "요청을 처리하지 못했습니다",
    },
    "en": {
        "title": "Patient card", "index": "Card index as of {as_of} ({days} days ago)",
        "phone": "Phone", "patient_id": "Patient id", "search": "Search",
        "count": "{n} patients with this number", "not_found": "No patient is registered with this number",
        "bad_phone": "This is not a valid phone number. Write it like 010-1234-5678, 01012345678 or "
                     "+82 10-1234-5678.",
        "no_query": "Enter a phone number or a patient id.",
        "both": "Enter a phone number or a patient id, not both.",
        "refused": "You may not see this page. Open the address (with its token) that crm-analysis serve printed "
                   "when it started, once, in this browser.",
        "not_here": "There is no such page.", "moved": "Redirecting.",
        "no_index": "The card index cannot be read. Make it again with the monthly run or crm-analysis daily.",
        "no_log": "The access log cannot be written, so the card is not shown. Tell your administrator.",
        "error": "The request could not be answered",
    },
}

_CSS = """
body { font-family: system-ui, "Malgun Gothic", "Apple SD Gothic Neo", sans-serif; margin: 1rem 1.5rem;
       color: #1a1a1a; background: #fff; }
header { display: flex; flex-wrap: wrap; gap: .5rem 2rem; align-items: baseline;
         border-bottom: 1px solid #ccc; padding-bottom: .5rem; }
.index { color: #555; margin: 0; }
.notes { color: #8a4b00; margin: 0; }
form { display: flex; gap: .5rem; }
input { font-size: 1rem; padding: .2rem .4rem; }
.card { border: 1px solid #bbb; border-radius: 6px; padding: .5rem 1rem 1rem; margin: 1rem 0; }
.first-line { font-size: 1.7rem; line-height: 1.3; margin: .3rem 0 .6rem; }
h2 { font-size: 1.05rem; margin: .8rem 0 .2rem; color: #333; }
ul { margin: 0; padding-left: 1.2rem; }
.message { font-size: 1.3rem; margin: 1.5rem 0; }
"""


def default_token_path() -> Path:
    """``$CRM_ANALYSIS_SERVE_TOKEN_FILE`` if set, else ``~/.crm_analysis/serve_token`` (read when called)."""
    env = os.environ.get(TOKEN_ENV_VAR)
    return Path(env).expanduser() if env else USUAL_TOKEN_PATH.expanduser()


def load_or_create_token(path: str | os.PathLike | None = None) -> tuple[str, Path, bool]:
    """The install's access token: read from its file, or made and stored there (mode 0600) on first start.

    Parameters
    ----------
    path : str or Path, optional
        The token file (``--token-file``); default :func:`default_token_path`.

    Returns
    -------
    token : str
        43 URL-safe characters (:func:`secrets.token_urlsafe` of 32 bytes).
    path : Path
        The file it is kept in.
    created : bool
        Whether it was made now.

    Raises
    ------
    ValueError
        If the file holds no usable token, or other users may read it (the token must then be assumed
        known): the message says to delete the file, which makes a new token on the next start.
    """
    path = Path(path).expanduser() if path is not None else default_token_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # private before the token is written
    except FileExistsError:
        return _read_token(path), path, False
    token = secrets.token_urlsafe(32)
    try:
        os.write(fd, (token + "\n").encode("ascii"))
    finally:
        os.close(fd)
    return token, path, True


def _read_token(path: Path) -> str:
    with path.open("rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        text = handle.read(4096).decode("ascii", "replace").strip()
    if os.name == "posix" and stat.S_ISREG(mode) and mode & 0o077:
        raise ValueError(f"the token file {path} can be read by other users (mode {stat.S_IMODE(mode):o}), so the "
                         "token must be assumed known: delete the file and start again to make a new one")
    if len(text) < 32 or not all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in text):
        raise ValueError(f"the token file {path} holds no usable token: delete it and start again to make a new one")
    return text


def check_loopback(host: str) -> str:
    """The address to listen on for `host`, which must be this computer's loopback address.

    Parameters
    ----------
    host : str
        ``127.0.0.1`` (or any 127.x.y.z), ``::1`` or ``localhost`` (taken as 127.0.0.1).

    Raises
    ------
    ValueError
        For any other address or name: the page would be reachable from other computers.
    """
    if host.strip().lower() == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(f"--host {host} is not a loopback address: the caller-ID page shows patients' cards, so it "
                         "is served to this computer only; use 127.0.0.1 (the default)")
    return str(address)


def security_headers(nonce: str) -> list[tuple[str, str]]:
    """The headers sent with every response; `nonce` allows the page's one inline style element."""
    return [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Cache-Control", "no-store"),
        ("Pragma", "no-cache"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", f"default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self'; "
                                    "base-uri 'none'; frame-ancestors 'none'"),
    ]


class CardServer(ThreadingHTTPServer):
    """The caller-ID page's HTTP server: one thread per request, loopback only.

    Parameters
    ----------
    index : str or Path
        The card index (``cards.sqlite``), opened per request, so a file replaced by a run is served from the
        next request on; or an outreach folder: then its newest index
        (:func:`~crm_analysis.profile.card_store.find_index`: the monthly ``YYYY-MM/`` and daily
        ``daily/YYYY-MM-DD/`` folders), looked for again at most every :attr:`rescan_seconds`, so a new
        day's index is served without a restart.
    token : str
        The install's token (:func:`load_or_create_token`).
    host : str
        A loopback address (:func:`check_loopback`); default 127.0.0.1.
    port : int
        Default 8765; 0 lets the system choose (see :attr:`port`).
    lang : {"ko", "en"}
        The page language when the request does not ask with ``?lang=``.
    access_log : str, Path or AccessLog, optional
        Default :func:`~crm_analysis.profile.access_log.default_log_path`.
    console : text stream, optional
        Where one line per request (method, path without query, status, milliseconds) is written; None: nowhere.

    Examples
    --------
    >>> server = CardServer("outreach/2026-10/cards.sqlite", token=token, port=0)  # doctest: +SKIP
    >>> threading.Thread(target=server.serve_forever, daemon=True).start()  # doctest: +SKIP
    >>> server.open_url                                                     # doctest: +SKIP
    'http://127.0.0.1:41234/?token=...'
    """

    daemon_threads = True
    #: How often an outreach folder given as the index is searched again for a newer index.
    rescan_seconds = 5.0

    def __init__(self, index: str | os.PathLike, *, token: str, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 lang: str = "ko", access_log: str | os.PathLike | AccessLog | None = None,
                 console: TextIO | None = None):
        if lang not in _LANGS:
            raise ValueError(f"lang must be one of {_LANGS}, not {lang!r}")
        address = check_loopback(host)
        self.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.index_path = Path(index).expanduser()
        self._found: tuple[float, Path | None] | None = None  # (when searched, newest index) for a folder
        self._found_lock = threading.Lock()
        self.token = token.encode("ascii")
        self.lang = lang
        self.access_log = access_log if isinstance(access_log, AccessLog) else AccessLog(access_log)
        self.console = console
        super().__init__((address, port), CardRequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for the host's full name; a loopback address needs no lookup
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    @property
    def port(self) -> int:
        """The port listened on (the system's choice when 0 was asked)."""
        return self.server_address[1]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        host = self.server_address[0]
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def open_url(self) -> str:
        """The address to open once in the browser: the search page with the token, which sets the cookie."""
        return f"{self.base_url}/?token={self.token.decode('ascii')}"

    def index_file(self) -> Path:
        """The index file to answer from now (the file given, or the newest in the folder given)."""
        if not self.index_path.is_dir():
            return self.index_path
        with self._found_lock:
            now = time.monotonic()
            if (self._found is None or now - self._found[0] > self.rescan_seconds
                    or self._found[1] is None or not self._found[1].exists()):
                self._found = (now, find_index(self.index_path))
            found = self._found[1]
        return found if found is not None else self.index_path / INDEX_NAME  # missing: CardStore.open says so

    def accepts(self, given: str | None) -> bool:
        """Whether `given` is the token (compared in constant time)."""
        return bool(given) and hmac.compare_digest(given.encode("utf-8", "replace"), self.token)

    def note(self, line: str) -> None:
        if self.console is not None:
            print(line, file=self.console, flush=True)

    def handle_error(self, request, client_address) -> None:
        # socketserver prints a traceback, whose message could hold a query; one line without it instead
        self.note(f"error while answering a request: {sys.exc_info()[0].__name__}")


class CardRequestHandler(BaseHTTPRequestHandler):
    """Answers one request of :class:`CardServer` (routes ``/``, ``/card``; everything else 404)."""

    server: CardServer
    server_version = "crm-analysis"
    sys_version = ""
    timeout = 15  # a connection that sends nothing is closed instead of holding its thread

    # --- routing
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._started = time.perf_counter()
        url = urlsplit(self.path)
        query: dict[str, str] = {}
        for key, value in parse_qsl(url.query, keep_blank_values=True):
            query.setdefault(key, value)
        raw_phone = next((v for k, _, v in (p.partition("=") for p in url.query.split("&")) if k == "phone"), "")
        if raw_phone.startswith("+"):  # +821012345678 put in the address unencoded by phone software: '+' is no space
            query["phone"] = "+" + query["phone"].lstrip()
        lang = query.get("lang") if query.get("lang") in _LANGS else self.server.lang
        try:
            if url.path == "/favicon.ico":  # asked by browsers on their own: not a lookup, not a refusal
                return self._page(HTTPStatus.NOT_FOUND, lang, _message(_TEXT[lang]["not_here"]))
            if "token" in query:
                if not self.server.accepts(query["token"]):
                    return self._refuse(lang)
                return self._drop_token(url.path, query)
            if not any(self.server.accepts(t) for t in self._tokens_given()):
                return self._refuse(lang)
            if url.path == "/":
                return self._search_page(lang)
            if url.path == "/card":
                return self._card(query, lang)
            return self._page(HTTPStatus.NOT_FOUND, lang, _message(_TEXT[lang]["not_here"]))
        except Exception as err:  # noqa: BLE001 - always answer, with the headers, and say nothing of the data
            self.server.note(f"error while answering a request: {type(err).__name__}")
            return self._page(HTTPStatus.INTERNAL_SERVER_ERROR, lang, _message(_TEXT[lang]["error"]))

    def _tokens_given(self) -> list[str]:
        given = [self.headers.get("X-CRM-Token", "").strip()]
        scheme, _, credentials = self.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer":
            given.append(credentials.strip())
        for header in self.headers.get_all("Cookie") or []:
            for part in header.split(";"):
                name, _, value = part.strip().partition("=")
                if name == COOKIE_NAME:
                    given.append(value.strip().strip('"'))
        return [g for g in given if g]

    def _refuse(self, lang: str) -> None:
        try:
            self.server.access_log.record([], query="refused", source=str(self.server.index_path))
        except (OSError, ValueError) as err:  # the refusal is answered whatever happens to its log line
            self.server.note(f"access log: a refused request was not recorded ({type(err).__name__}: {err})")
        self._page(HTTPStatus.FORBIDDEN, lang, _message(_TEXT[lang]["refused"]))

    def _drop_token(self, path: str, query: dict[str, str]) -> None:
        """303 to the same page without the token (out of the address bar and history), setting the cookie."""
        rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
        target = (path if path in _PATHS else "/") + (f"?{rest}" if rest else "")  # never off this server
        cookie = (f"{COOKIE_NAME}={self.server.token.decode('ascii')}; Path=/; HttpOnly; SameSite=Strict; "
                  f"Max-Age={_COOKIE_MAX_AGE}")
        lang = query.get("lang") if query.get("lang") in _LANGS else self.server.lang
        self._page(HTTPStatus.SEE_OTHER, lang, _message(_TEXT[lang]["moved"]),
                   extra=[("Location", target), ("Set-Cookie", cookie)])

    # --- the pages
    def _search_page(self, lang: str) -> None:
        try:
            with CardStore.open(self.server.index_file()) as store:
                header = _index_line(store, lang)
        except ValueError:  # CardIndexError
            header = _message(_TEXT[lang]["no_index"])
        self._page(HTTPStatus.OK, lang, header + _search_form(lang))

    def _card(self, query: dict[str, str], lang: str) -> None:
        text = _TEXT[lang]
        phone, patient_id = query.get("phone", "").strip(), query.get("patient_id", "").strip()
        if not phone and not patient_id:
            return self._page(HTTPStatus.BAD_REQUEST, lang, _message(text["no_query"]) + _search_form(lang))
        if phone and patient_id:
            return self._page(HTTPStatus.BAD_REQUEST, lang, _message(text["both"]) + _search_form(lang))
        kind = "phone" if phone else "patient_id"
        try:
            store = CardStore.open(self.server.index_file())
        except ValueError:  # CardIndexError: gone, unreadable or of another version
            return self._page(HTTPStatus.SERVICE_UNAVAILABLE, lang, _message(text["no_index"]))
        with store:
            header = _index_line(store, lang)
            try:
                records = store.find(phone=phone) if phone else store.find(patient_id=patient_id)
            except ValueError:  # not a usable phone number
                records, status = None, HTTPStatus.BAD_REQUEST
            ids = [str(r["card"]["patient_id"]) for r in records or []]
            try:  # before anything is shown: a lookup that cannot be logged is not answered
                self.server.access_log.record(ids, query=kind, as_of=store.as_of, source=str(store.path))
            except OSError as err:
                self.server.note(f"access log: cannot be written ({type(err).__name__}); the card was not shown")
                return self._page(HTTPStatus.INTERNAL_SERVER_ERROR, lang, header + _message(text["no_log"]))
            if records is None:
                return self._page(status, lang, header + _message(text["bad_phone"]) + _search_form(lang))
            if not records:
                return self._page(HTTPStatus.OK, lang, header + _message(text["not_found"]) + _search_form(lang))
            body = [header, _search_form(lang)]
            if len(records) > 1:
                body.append(f'<p class="count">{_esc(text["count"].format(n=len(records)))}</p>')
            body += [_card_html(record, lang) for record in records]
            return self._page(HTTPStatus.OK, lang, "\n".join(body))

    # --- responses
    def _page(self, status: HTTPStatus, lang: str, body: str, *, extra: list[tuple[str, str]] = ()) -> None:
        nonce = secrets.token_urlsafe(16)
        page = (f'<!doctype html>\n<html lang="{lang}"><head><meta charset="utf-8">'
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                f'<meta name="referrer" content="no-referrer"><title>{_esc(_TEXT[lang]["title"])}</title>'
                f'<style nonce="{nonce}">{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n')
        data = page.encode("utf-8")
        self.send_response(status)
        for name, value in [*security_headers(nonce), *extra]:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, unsupported method) as our page, with our headers.

        Its message is not shown: it can quote the request line, query included.
        """
        self.close_connection = True
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = ""
        self._page(code, self.server.lang, _message(f"{code} {phrase}"))

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        started = getattr(self, "_started", None)
        took = f" {1000 * (time.perf_counter() - started):.1f} ms" if started is not None else ""
        path = urlsplit(getattr(self, "path", "") or "").path  # never the query: it holds the phone and token
        code = int(code) if isinstance(code, int) else code
        self.server.note(f"{self.log_date_time_string()} {getattr(self, 'command', None) or '-'} {path} {code}{took}")

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        """Silent: http.server's messages quote the raw request line (query included); see :meth:`log_request`."""


# --- page parts (every value from the data goes through _esc)
def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _message(text: str) -> str:
    return f'<p class="message">{_esc(text)}</p>'


def _search_form(lang: str) -> str:
    text = _TEXT[lang]
    # autocomplete off: the browser's form history would otherwise keep the numbers typed
    return ('<form method="get" action="/card" autocomplete="off">'
            f'<input type="search" name="phone" inputmode="tel" placeholder="{_esc(text["phone"])}" '
            f'aria-label="{_esc(text["phone"])}">'
            f'<input type="search" name="patient_id" placeholder="{_esc(text["patient_id"])}" '
            f'aria-label="{_esc(text["patient_id"])}">'
            f'<input type="hidden" name="lang" value="{_esc(lang)}">'
            f'<button type="submit">{_esc(text["search"])}</button></form>')


def _index_line(store: CardStore, lang: str) -> str:
    # the real date: the server shows how old the index is today (not library analysis code)
    line = _TEXT[lang]["index"].format(as_of=store.as_of.isoformat(), days=store.age_days(date.today()))
    made_by = f' <span class="made-by">· {_esc(store.made_by)}</span>' if store.made_by else ""
    notes = store.meta.get(f"notes_{lang}")  # what the run could not compute, said on every card
    notes = f'<p class="notes">{_esc(notes)}</p>' if notes else ""
    return f'<header><p class="index">{_esc(line)}{made_by}</p>{notes}</header>'


def _card_html(record: dict, lang: str) -> str:
    parts = [f'<section class="card"><h1 class="first-line">{_esc(first_line(record, lang))}</h1>']
    for title, lines in card_sections(record, lang):
        parts.append(f"<h2>{_esc(title)}</h2>")
        if lines:
            parts.append("<ul>" + "".join(f"<li>{_esc(line)}</li>" for line in lines) + "</ul>")
    parts.append("</section>")
    return "\n".join(parts)
