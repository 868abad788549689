"""The ``crm-analysis lookup`` command: print a patient's card in the terminal.

::

    crm-analysis lookup --source data/demo --phone 010-1234-5678 [--as-of 2026-10-31]

Exit status: 0 when at least one patient was found; 1 when nobody has that
number ("no patient found", no traceback); 2 for bad input (an invalid phone
number, a source that does not meet the data contract). Every lookup is
written to the access log (``--access-log``, default
``$CRM_ANALYSIS_ACCESS_LOG`` or ``~/.crm_analysis/access.log``); a log that
is switched off (``/dev/null``) or moved is said on standard error, in one line
(:func:`crm_analysis.profile.access_log.log_note`).

``cli.py`` wires it with::

    from crm_analysis.profile.lookup_cli import add_lookup_parser
    add_lookup_parser(sub)
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_lookup_parser", "run_lookup", "main"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def add_lookup_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``lookup`` subcommand to `subparsers` (from ``ArgumentParser.add_subparsers``)."""
    lookup = subparsers.add_parser("lookup", help="show a patient's card, found by phone number or patient id")
    lookup.add_argument("--source", required=True, help="folder, file, workbook or database URL")
    who = lookup.add_mutually_exclusive_group(required=True)
    who.add_argument("--phone", help="phone number in any common form: 010-1234-5678, 01012345678, +82 10-1234-5678")
    who.add_argument("--patient-id", dest="patient_id", help="look up one patient by id instead")
    lookup.add_argument("--as-of", dest="as_of",
                        help="date the card describes, YYYY-MM-DD (default: the last visit date in the data)")
    lookup.add_argument("--mapping", help="mapping file (YAML) for a clinic's own export")
    lookup.add_argument("--lang", choices=("ko", "en"), default="ko", help="card language (default ko)")
    lookup.add_argument("--access-log", dest="access_log", default=None,
                        help="access log file (default $CRM_ANALYSIS_ACCESS_LOG or ~/.crm_analysis/access.log); "
                             "a log elsewhere, or switched off with /dev/null, is said on standard error")
    lookup.add_argument("--quick", action="store_true",
                        help="skip the churn and lifetime-value models (return probability and expected value "
                             "are then shown as not computed)")
    lookup.set_defaults(func=run_lookup)
    return lookup


def run_lookup(args: argparse.Namespace) -> int:
    """Run ``crm-analysis lookup``; returns the exit status.

    "No patient found" is handled here (message on stderr, status 1). Other
    errors propagate to ``crm_analysis.cli.main``, which prints them without a
    traceback (data errors: status 2).
    """
    import warnings

    import pandas as pd

    from crm_analysis import load_clinic
    from crm_analysis.exceptions import CrmAnalysisWarning, PatientNotFoundError
    from crm_analysis.i18n import label
    from crm_analysis.profile.access_log import log_note
    from crm_analysis.profile.lookup import patient_card
    from crm_analysis.profile.index import phone_key

    if args.phone is not None and phone_key(args.phone) is None:  # before the (slow) load
        raise ValueError("the phone number given is not a valid Korean phone number; "
                         "write it like 010-1234-5678, 01012345678 or +82 10-1234-5678")
    note = log_note(args.access_log)
    if note:  # auditing switched off or moved is never silent
        print(note, file=sys.stderr, flush=True)
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
    from crm_analysis.io.sources import redact_secrets

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
