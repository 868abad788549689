"""The ``crm-analysis lookup`` command: print a patient's card in the terminal.

::

    crm-analysis lookup --source data/demo --phone 010-1234-5678 [--as-of 2026-10-31]
    crm-analysis lookup --index outreach/2026-10/cards.sqlite --phone 010-1234-5678

With a card index (``cards.sqlite``, written by the monthly and daily runs) the
card is read from it in a fraction of a second, without importing the data
stack (:mod:`crm_analysis.profile.card_store`). The index is the one given with
``--index``, or else the newest one made from ``--source`` in the outreach
folder (``--outreach-dir``, by default ``outreach`` beside the monthly run's
default ``reports``). The data itself is loaded and analysed instead, as
before (seconds), when there is no index for the source, when the index is
older than ``--max-age-days`` (default 45), when ``--as-of`` names another
day, or with ``--no-index``; standard error says which, in one line, and also
how old the index used is.

Exit status: 0 when at least one patient was found; 1 when nobody has that
number ("no patient found", no traceback); 2 for bad input (an invalid phone
number, a source that does not meet the data contract, an ``--index`` that is
not a usable card index). Every lookup is written to the access log
(``--access-log``, default ``$CRM_ANALYSIS_ACCESS_LOG`` or
``~/.crm_analysis/access.log``); a log that is switched off (``/dev/null``) or
moved is said on standard error, in one line
(:func:`crm_analysis.profile.access_log.log_note`).

``cli.py`` wires it with::

    from crm_analysis.profile.lookup_cli import add_lookup_parser
    add_lookup_parser(sub)
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

__all__ = ["add_lookup_parser", "run_lookup", "main", "DEFAULT_MAX_AGE_DAYS", "default_outreach_dir"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

#: An index older than this (days from its data's day to today) is not used: the data is read instead.
DEFAULT_MAX_AGE_DAYS = 45


def default_outreach_dir() -> Path:
    """Where the monthly run puts its outreach folder by default: ``outreach`` beside ``./reports``.

    The same rule as :func:`crm_analysis.monthly.run.default_outreach_dir` for the run's default ``--out``;
    not imported from there, since that module loads the analysis stack.
    """
    return Path("reports").resolve().parent / "outreach"


def add_lookup_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``lookup`` subcommand to `subparsers` (from ``ArgumentParser.add_subparsers``)."""
    lookup = subparsers.add_parser("lookup", help="show a patient's card, found by phone number or patient id")
    lookup.add_argument("--source", help="folder, file, workbook or database URL (optional with --index)")
    who = lookup.add_mutually_exclusive_group(required=True)
    who.add_argument("--phone", help="phone number in any common form: 010-1234-5678, 01012345678, +82 10-1234-5678")
    who.add_argument("--patient-id", dest="patient_id", help="look up one patient by id instead")
    lookup.add_argument("--as-of", dest="as_of",
                        help="date the card describes, YYYY-MM-DD (default: the card index's day, or the last "
                             "visit date in the data); a day other than the index's reads the data itself")
    lookup.add_argument("--mapping", help="mapping file (YAML) for a clinic's own export")
    lookup.add_argument("--lang", choices=("ko", "en"), default="ko", help="card language (default ko)")
    lookup.add_argument("--access-log", dest="access_log", default=None,
                        help="access log file (default $CRM_ANALYSIS_ACCESS_LOG or ~/.crm_analysis/access.log); "
                             "a log elsewhere, or switched off with /dev/null, is said on standard error")
    lookup.add_argument("--quick", action="store_true",
                        help="without a card index: skip the churn and lifetime-value models (return probability "
                             "and expected value are then shown as not computed)")
    index = lookup.add_argument_group("card index (the monthly and daily runs write cards.sqlite)")
    index.add_argument("--index", default=None, metavar="PATH",
                       help="the card index file to read (then --source is optional)")
    index.add_argument("--outreach-dir", dest="outreach_dir", default=None, metavar="DIR",
                       help="where to look for the newest index of --source: its YYYY-MM/ and daily/YYYY-MM-DD/ "
                            "folders (default: outreach beside ./reports, as for 'run')")
    index.add_argument("--max-age-days", dest="max_age_days", type=int, default=DEFAULT_MAX_AGE_DAYS, metavar="N",
                       help="read the data itself when the index is older than N days "
                            f"(default {DEFAULT_MAX_AGE_DAYS})")
    index.add_argument("--no-index", dest="use_index", action="store_false",
                       help="read the data itself even when there is an index (e.g. a patient registered since)")
    lookup.set_defaults(func=run_lookup)
    return lookup


def run_lookup(args: argparse.Namespace) -> int:
    """Run ``crm-analysis lookup``; returns the exit status.

    "No patient found" is handled here (message on stderr, status 1). Other
    errors propagate to ``crm_analysis.cli.main``, which prints them without a
    traceback (bad input, such as an unusable ``--index``: status 2).
    """
    from crm_analysis.phones import phone_key
    from crm_analysis.profile.access_log import log_note
    from crm_analysis.profile.card_store import BAD_PHONE_MESSAGE

    if getattr(args, "index", None) is None and not args.source:
        raise ValueError("give --source (the clinic's data) or --index (a card index file, cards.sqlite)")
    if args.phone is not None and phone_key(args.phone) is None:  # before anything slow
        raise ValueError(BAD_PHONE_MESSAGE)
    note = log_note(args.access_log)
    if note:  # auditing switched off or moved is never silent
        print(note, file=sys.stderr, flush=True)
    store, why = _card_store(args)
    if store is not None:
        with store:
            return _lookup_in_index(store, args)
    if not args.source:  # only an --index that cannot serve this lookup, and nothing to fall back on
        raise ValueError(f"{why}; give --source to read the data itself")
    print(f"note: {why}: reading the data itself (this takes a while)", file=sys.stderr, flush=True)
    return _lookup_in_data(args)


def _requested_day(args: argparse.Namespace) -> dt.date | None:
    """``--as-of`` as a date; None when not given or not written YYYY-MM-DD (the full path parses it then)."""
    try:
        return dt.date.fromisoformat(args.as_of[:10]) if args.as_of else None
    except ValueError:
        return None


def _card_store(args: argparse.Namespace):
    """(the card index to answer from, None) or (None, why not, in a few words)."""
    from crm_analysis.exceptions import CardIndexError
    from crm_analysis.profile.card_store import CardStore, find_index, same_source

    if not getattr(args, "use_index", True):
        return None, "--no-index"
    explicit = getattr(args, "index", None)
    if explicit is not None:
        path = Path(explicit)
    else:
        folder = Path(args.outreach_dir) if getattr(args, "outreach_dir", None) else default_outreach_dir()
        path = find_index(folder, source=args.source)
        if path is None:
            return None, f"no card index of this source in {folder}"
    try:
        store = CardStore.open(path)
    except CardIndexError as err:
        if explicit is not None and not args.source:
            raise
        return None, f"the card index cannot be used ({err})"
    wanted, age = _requested_day(args), store.age_days(dt.date.today())
    max_age = getattr(args, "max_age_days", DEFAULT_MAX_AGE_DAYS)
    why = None
    if explicit is not None and args.source and store.source and not same_source(store.source, args.source):
        why = f"the card index {path} was made from another source ({store.source})"
    elif args.as_of and wanted != store.as_of:
        why = f"the card index {path} describes {store.as_of}, not --as-of {args.as_of}"
    elif age > max_age and (explicit is None or args.source):
        why = f"the card index {path} is {age} days old (over --max-age-days {max_age})"
    if why:
        store.close()
        return None, why
    stale = f", over --max-age-days {max_age}" if age > max_age else ""
    print(f"note: card index {path} ({store.made_by or 'no maker recorded'}), data as of {store.as_of}: "
          f"{age} day(s) old{stale}", file=sys.stderr, flush=True)
    return store, None


def _lookup_in_index(store, args: argparse.Namespace) -> int:
    """The card(s) from the index: logged first, then printed."""
    from crm_analysis.profile.access_log import AccessLog
    from crm_analysis.profile.card_store import card_text, not_found_text

    records = store.find(phone=args.phone, patient_id=args.patient_id)
    ids = [r["card"]["patient_id"] for r in records]
    query = "phone" if args.phone is not None else "patient_id"
    # logged before anything is shown: a lookup that cannot be logged is not shown
    AccessLog(args.access_log).record(ids, query=query, as_of=store.as_of, source=store.source or args.source or "")
    if not records:
        what = "with that phone number" if args.phone is not None else f"with id {args.patient_id}"
        print(f"{not_found_text(args.lang)}: no patient found {what} in the card index "
              f"(data as of {store.as_of}; a patient registered since is found with --no-index)", file=sys.stderr)
        return EXIT_FAILED
    print(card_text(records, store.meta, args.lang, today=dt.date.today()))
    return EXIT_OK


def _lookup_in_data(args: argparse.Namespace) -> int:
    """The card(s) computed from the data itself: load, analyse, look up (seconds)."""
    import warnings

    import pandas as pd

    from crm_analysis import load_clinic
    from crm_analysis.exceptions import CrmAnalysisWarning, PatientNotFoundError
    from crm_analysis.i18n import label
    from crm_analysis.profile.lookup import patient_card

    # loaded without as_of: events after --as-of are not errors, the card's snapshot leaves them out
    clinic = load_clinic(args.source, mapping=args.mapping)
    as_of = pd.Timestamp(args.as_of) if args.as_of else clinic.tables["visits"]["visit_date"].max()
    if pd.isna(as_of):
        raise ValueError("the data has no visits, so there is no default date: give --as-of YYYY-MM-DD")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CrmAnalysisWarning)
        try:
            cards = patient_card(clinic, phone=args.phone, patient_id=args.patient_id, as_of=as_of,
                                 access_log=args.access_log, lang=args.lang,
                                 churn=not args.quick, clv=not args.quick)
        except PatientNotFoundError as err:
            print(f"{label('profile_not_found', args.lang)}: {err}", file=sys.stderr)
            return EXIT_FAILED
    print(cards.to_text(args.lang))
    for w in caught:
        if issubclass(w.category, CrmAnalysisWarning):
            print(f"note: {w.message}", file=sys.stderr)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the lookup command on its own (``python -m crm_analysis.profile.lookup_cli lookup ...``).

    Errors are reported as ``crm-analysis`` does: one line, no traceback;
    status 2 for bad input, 1 otherwise.
    """
    from crm_analysis.exceptions import CrmAnalysisError, DataValidationError
    from crm_analysis.redaction import redact_secrets

    parser = argparse.ArgumentParser(prog="crm-analysis")
    sub = parser.add_subparsers(dest="command", required=True)
    add_lookup_parser(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DataValidationError as err:
        print(redact_secrets(f"error: the data does not meet the contract.\n{err}", args.source), file=sys.stderr)
        return EXIT_BAD_INPUT
    except (CrmAnalysisError, ValueError) as err:
        print(redact_secrets(f"error: {err}", args.source), file=sys.stderr)
        return EXIT_BAD_INPUT if isinstance(err, ValueError) else EXIT_FAILED
    except OSError as err:
        print(redact_secrets(f"error: {err}", args.source), file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
