"""The ``crm-analysis serve`` command: the caller-ID page on this computer (:mod:`crm_analysis.profile.serve`).

::

    crm-analysis serve --index outreach/2026-10/cards.sqlite [--port 8765] [--host 127.0.0.1] [--lang ko|en]
                       [--access-log FILE] [--token-file FILE]
    crm-analysis serve --index outreach        # the newest index there, monthly or daily

On start it checks the index (a missing or unusable one: one line, exit 2), reads
or makes the install's token (``--token-file``, else
``$CRM_ANALYSIS_SERVE_TOKEN_FILE``, else ``~/.crm_analysis/serve_token``) and
prints the address to open once in the browser (it holds the token), then
serves until Ctrl-C (exit 0). A ``--host`` that is not a loopback address is
refused (exit 2); a port already taken exits 1.

``cli.py`` wires it with::

    from crm_analysis.profile.serve_cli import add_serve_parser
    add_serve_parser(sub)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_serve_parser", "run_serve"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return port


def add_serve_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to `subparsers` (from ``ArgumentParser.add_subparsers``)."""
    serve = subparsers.add_parser(
        "serve", help="the caller-ID page: patients' cards in a browser, on this computer only",
        description="Serve the card index as a small web page on this computer (127.0.0.1) for the phone "
                    "software to open on an incoming call: /card?phone=NUMBER. Every request needs the "
                    "install's token and is written to the access log.")
    serve.add_argument("--index", required=True, metavar="PATH",
                       help="the card index file (cards.sqlite, written by the monthly run and `daily`), a newer "
                            "file put in its place being served from the next request on; or the outreach folder, "
                            "whose newest index (YYYY-MM/ or daily/YYYY-MM-DD/) is served")
    serve.add_argument("--port", type=_port, default=8765, help="port to listen on (default 8765)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="loopback address to listen on (default 127.0.0.1); any other address is refused")
    serve.add_argument("--lang", choices=("ko", "en"), default="ko",
                       help="page language (default ko); a request can ask with ?lang=en")
    serve.add_argument("--access-log", dest="access_log", default=None,
                       help="access log file (default $CRM_ANALYSIS_ACCESS_LOG or ~/.crm_analysis/access.log)")
    serve.add_argument("--token-file", dest="token_file", default=None,
                       help="file holding the access token, made (mode 0600) on first start (default "
                            "$CRM_ANALYSIS_SERVE_TOKEN_FILE or ~/.crm_analysis/serve_token); delete it and "
                            "restart to rotate the token")
    serve.set_defaults(func=run_serve)
    return serve


def run_serve(args: argparse.Namespace) -> int:
    """Run ``crm-analysis serve`` until interrupted; returns the exit status.

    Bad input (an unusable index, a non-loopback host, an unusable token file) is reported here in one
    line on standard error, status 2, before anything listens.
    """
    from crm_analysis.profile.access_log import AccessLog, log_note
    from crm_analysis.profile.card_store import CardStore, find_index
    from crm_analysis.profile.serve import CardServer, check_loopback, load_or_create_token

    index = Path(args.index).expanduser()
    try:
        check_loopback(args.host)
        path = find_index(index) if index.is_dir() else index
        if path is None:
            raise ValueError(f"no card index in {index}: the monthly run (or crm-analysis daily) writes one into "
                             f"its YYYY-MM/ (or daily/YYYY-MM-DD/) folder there")
        with CardStore.open(path) as store:  # CardIndexError (a ValueError): missing, not an index, old
            as_of, made_by, index_path = store.as_of, store.made_by, store.path
        token, token_path, created = load_or_create_token(args.token_file)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    note = log_note(args.access_log)
    if note:  # auditing switched off or moved is never silent
        print(note, file=sys.stderr, flush=True)
    log = AccessLog(args.access_log)
    try:
        server = CardServer(index, token=token, host=args.host, port=args.port, lang=args.lang,
                            access_log=log, console=sys.stderr)
    except OSError as err:
        print(f"error: cannot listen on {args.host}:{args.port}: {err.strerror or err} "
              "(is another crm-analysis serve running? choose another --port)", file=sys.stderr)
        return EXIT_FAILED
    base = server.base_url
    newest = f"; the newest index in {index} is served" if index.is_dir() else ""
    print(f"serving the card index {index_path} ({made_by}, data as of {as_of}{newest}) on {base}/\n"
          f"open this address once in the browser the phone software uses (it holds the access token; "
          f"the browser then keeps it in a cookie):\n\n    {server.open_url}\n\n"
          f"phone software: {base}/card?phone={{CALLER_NUMBER}}  (token in the X-CRM-Token header if it can "
          f"send one)\n"
          f"token: {token_path}{' (new)' if created else ''}; access log: {log.path}\n"
          "Ctrl-C stops the server.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
    return EXIT_OK
