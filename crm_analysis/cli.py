"""The ``crm-analysis`` command.

Bad input exits with status 2 and a plain message, never a traceback. Other
failures exit with status 1 and one line (``--debug`` shows the traceback).
A message never repeats a huge value whole: one-line errors are cut to
:data:`~crm_analysis.exceptions.MAX_SHOWN_MESSAGE` characters. Nothing the
command prints holds a secret of a database URL it was given (``--source``,
``--out``): sources are shown through :func:`crm_analysis.io.sources.redact_url`,
and every error message goes through :func:`crm_analysis.io.sources.redact_secrets`.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from crm_analysis import synth
    from crm_analysis.io.sources import redact_url
    from crm_analysis.io.writing import write_clinic

    clinic = synth.generate_clinic(n_patients=args.patients, seed=args.seed, start=args.start, end=args.end)
    written = clinic.write(args.out, format=args.format) if "://" not in args.out else write_clinic(clinic.tables, args.out)
    counts = ", ".join(f"{name} {len(df):,}" for name, df in clinic.tables.items())
    print(f"demo clinic (seed {args.seed}) written to {redact_url(args.out)}: {counts}")
    if "://" in args.out:
        print("truth.json is written only for folder targets; use a folder to get the generating parameters.")
    return EXIT_OK if written else EXIT_FAILED


def _cmd_validate(args: argparse.Namespace) -> int:
    from crm_analysis import load_clinic

    clinic = load_clinic(args.source, mapping=args.mapping, as_of=args.as_of, on_invalid=args.on_invalid)
    print(f"OK: {clinic.source} meets the data contract" + (f" as of {args.as_of}" if args.as_of else ""))
    counts = clinic.row_counts()
    for row in counts.itertuples(index=False):
        print(f"  {row.table:<13} {row.korean:<6} {'%12s' % f'{row.rows:,}' if row.present else '      absent'}")
    if clinic.encodings:
        print("  encodings: " + ", ".join(f"{k}={v}" for k, v in sorted(clinic.encodings.items())))
    print(clinic.report.summary())
    if args.quarantine_out and clinic.report.quarantined:
        from crm_analysis.cells import neutralise_formulas
        from crm_analysis.io.writing import atomic_write

        folder = Path(args.quarantine_out)
        for name, df in clinic.report.quarantined.items():
            text = neutralise_formulas(df).to_csv(index_label="row")
            atomic_write(folder / f"{name}_quarantined.csv",
                         lambda handle, text=text: handle.write(text.encode("utf-8-sig")), mode=0o600)
        print(f"quarantined rows written to {folder}")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from crm_analysis.network import is_network_config

    if args.memory:
        from crm_analysis.memory import parse_size

        parse_size(args.memory)  # ValueError (exit 2) before anything starts
        os.environ["CRM_ANALYSIS_MEMORY"] = args.memory  # read by the run (crm_analysis.memory.memory_available)
    if args.clinics or is_network_config(args.source):
        return _run_network(args)
    if not args.source:
        raise ValueError("give --source (one clinic) or --clinics network.yaml (several)")
    if args.executor != "local" or args.scheduler:
        raise ValueError("--executor dask and --scheduler spread a network's branches: use them with --clinics")
    if args.dry_run:
        from crm_analysis.monthly.run import plan_month

        print("\n".join(plan_month(args.month, args.source, mapping=args.mapping, lang=args.lang, out=args.out,
                                   outreach_dir=args.outreach_dir, pdf=args.pdf, notebook_dir=args.notebook_dir,
                                   rules=args.rules)))
        return EXIT_OK
    early = _load_early(args)
    try:
        from crm_analysis.monthly.run import run_month

        result = run_month(args.month, args.source, mapping=args.mapping, lang=args.lang, out=args.out,
                           outreach_dir=args.outreach_dir, min_count=args.min_count, pdf=args.pdf,
                           notebook_dir=args.notebook_dir, analysis_hooks=args.analysis_hooks, rules=args.rules,
                           early=early)
    finally:  # whatever stopped the run (a bad option too): no child left, no copy of the data left
        if early is not None:
            early.close()
    print(f"{args.month}: report, kpis.json and {len(result.notebooks)} notebook(s) in {result.out_dir}; "
          f"{len(result.outreach_files)} outreach file(s) in {result.outreach_dir}")
    if result.skipped:
        names = sorted({s["analysis"] for s in result.skipped})
        print(f"{len(names)} section(s) skipped because the data cannot support them yet: {', '.join(names)} "
              f"(reasons in the report and in manifest.json)")
    return EXIT_OK


def _load_early(args: argparse.Namespace):
    """Start loading the clinic in a forked child before the analysis stack is imported (a second core loads
    while this one imports; :mod:`crm_analysis.io.forked_load`); None when the month is not ``YYYY-MM`` (the
    run reports that) or forking is not safe here."""
    from crm_analysis.clinic import month_end
    from crm_analysis.io.forked_load import ForkedLoad
    from crm_analysis.private_files import private_workdir

    try:
        as_of = month_end(args.month)
    except ValueError:
        return None
    folder = private_workdir()  # the run's private folder; also removes what killed runs left
    early = ForkedLoad.start(args.source, mapping=args.mapping, month=args.month, as_of=as_of, folder=folder)
    if early is None:
        shutil.rmtree(folder, ignore_errors=True)
    return early


def _run_network(args: argparse.Namespace) -> int:
    from crm_analysis.network import read_network_config
    from crm_analysis.monthly.run import plan_month

    if args.clinics and args.source:
        raise ValueError("give either --source (one clinic) or --clinics (a network config), not both")
    if args.mapping:
        raise ValueError("--mapping does not apply to a network config: give each clinic its own 'mapping:' there")
    if args.scheduler and args.executor != "dask":
        raise ValueError("--scheduler needs --executor dask")
    from crm_analysis.monthly.run import default_outreach_dir

    config = read_network_config(args.clinics or args.source)
    out = Path(args.out)
    outreach = Path(args.outreach_dir) if args.outreach_dir else default_outreach_dir(out)
    if args.dry_run:
        for clinic in config.clinics:
            print(f"[{clinic.id}] {clinic.name}")
            print("\n".join(plan_month(args.month, clinic.source, mapping=clinic.mapping, lang=clinic.lang or args.lang,
                                       out=out / clinic.id, outreach_dir=outreach / clinic.id, pdf=args.pdf,
                                       notebook_dir=args.notebook_dir)))
        where = ("serially, in this process" if args.executor == "local" else
                 f"on the Dask cluster at {args.scheduler}" if args.scheduler else
                 f"on a local Dask cluster of {args.workers} worker process(es)")
        print(f"{len(config.clinics)} branch(es) {where}; then the network summary into {out / 'network' / args.month}/")
        return EXIT_OK
    from crm_analysis.network import run_network

    run = run_network(args.month, config, out=out, outreach_dir=outreach, lang=args.lang, min_count=args.min_count,
                      pdf=args.pdf, notebook_dir=args.notebook_dir, analysis_hooks=args.analysis_hooks,
                      executor=args.executor, scheduler=args.scheduler, workers=args.workers, retries=args.retries)
    done = len(run.outcomes) - len(run.failures)
    print(f"{args.month}: {done} of {len(run.outcomes)} branch(es) done in {run.seconds:.0f} s; "
          f"network summary in {run.summary_dir}")
    for clinic_id, reason in run.failures.items():
        print(f"error: [{clinic_id}] {reason}", file=sys.stderr)
    if run.summary_error:
        print(f"error: the network summary was not published: {run.summary_error}", file=sys.stderr)
    return EXIT_OK if run.ok else EXIT_FAILED


def _cmd_daily(args: argparse.Namespace) -> int:
    from crm_analysis.daily.run import run_daily

    result = run_daily(args.date, args.source, mapping=args.mapping, out=args.out, outreach_dir=args.outreach_dir,
                       rules=args.rules, risk_model=args.risk_model)
    rows = ", ".join(f"{name} {n:,}" for name, n in result.rows.items())
    print(f"{result.day:%Y-%m-%d}: {len(result.files)} file(s) in {result.folder} ({rows})")
    if result.risk_source != "noshow_model":
        print("call list ordered by earlier no-shows (--no-risk-model, or the no-show model could not be fitted)")
    elif result.model in ("fitted", "reused"):
        what = "fitted and kept for the month's other days" if result.model == "fitted" else "reused from the cache"
        print(f"no-show model of {result.day:%Y-%m}: {what}")
    print("seconds: " + ", ".join(f"{step} {s:.2f}" for step, s in result.timings.items()))
    return EXIT_OK


def _cmd_data_dictionary(args: argparse.Namespace) -> int:
    from crm_analysis.contract import render_data_dictionary

    text = render_data_dictionary()
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"written to {args.out}")
    else:
        print(text)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm-analysis", description="Patient-relationship analytics for clinics.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for unexpected errors")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo-data", help="generate the demo clinic (with truth.json)")
    demo.add_argument("--out", required=True, help="folder, or a database URL such as duckdb:///demo.duckdb")
    demo.add_argument("--patients", type=int, default=20_000, help="number of patients (default 20000)")
    demo.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    demo.add_argument("--format", choices=("csv", "parquet"), default="csv", help="file format for a folder")
    demo.add_argument("--start", default="2023-11-01", help="first day of the clinic's history")
    demo.add_argument("--end", default="2026-10-31", help="last day of the clinic's history (the extraction date)")
    demo.set_defaults(func=_cmd_demo_data)

    val = sub.add_parser("validate", help="check a source against the data contract")
    val.add_argument("--source", required=True, help="folder, file, workbook or database URL")
    val.add_argument("--mapping", help="mapping file (YAML) for a clinic's own export")
    val.add_argument("--as-of", dest="as_of", help="extraction date YYYY-MM-DD: later events are errors")
    val.add_argument("--on-invalid", dest="on_invalid", choices=("raise", "quarantine"),
                     help="refuse bad rows (default) or set them aside and report them")
    val.add_argument("--quarantine-out", dest="quarantine_out", help="folder to write quarantined rows to")
    val.set_defaults(func=_cmd_validate)

    run = sub.add_parser("run", help="run the monthly notebooks for one month")
    run.add_argument("--month", required=True, help="YYYY-MM")
    run.add_argument("--source", help="folder, file, workbook or database URL of one clinic")
    run.add_argument("--clinics", help="network config (.yaml) listing several clinics (branches) to run")
    run.add_argument("--mapping", help="mapping file (YAML)")
    run.add_argument("--lang", choices=("ko", "en"), default="ko", help="report language (default ko)")
    run.add_argument("--out", default="reports", help="reports folder (default ./reports)")
    run.add_argument("--outreach-dir", dest="outreach_dir", default=None,
                     help="folder for the outreach lists (personal data, owner-only), kept apart from the reports "
                          "(default: beside --out: --out clinic_a/reports gives clinic_a/outreach, "
                          "--out gangnam gives gangnam-outreach)")
    run.add_argument("--min-count", dest="min_count", type=int, default=5,
                     help="suppress counts below this in report tables (default 5: counts 1-4 are hidden)")
    run.add_argument("--no-pdf", dest="pdf", action="store_false", help="skip report.pdf")
    run.add_argument("--no-hooks", dest="analysis_hooks", action="store_false",
                     help="skip the analyses' models, KPI sections and outreach lists (core KPIs only)")
    run.add_argument("--rules", default=None, metavar="DIR",
                     help="your own rule files (segments.yaml, vip.yaml, loyalty.yaml, churn.yaml, campaigns.yaml, "
                          "reminders.yaml; any subset): applied to the report and the lists, recorded in the manifest")
    run.add_argument("--notebook-dir", dest="notebook_dir", default=None,
                     help="folder of the notebooks to run (default: the project's notebooks/)")
    run.add_argument("--memory", default=None, metavar="SIZE",
                     help="memory the run may use, e.g. 6GB (default: what the machine, or its container, has "
                          "available); a large clinic's heavy steps then run fewer at a time")
    run.add_argument("--dry-run", action="store_true", help="list what would run, and stop")
    net = run.add_argument_group("clinic networks (with --clinics)")
    net.add_argument("--executor", choices=("local", "dask"), default="local",
                     help="run the branches one after another here (local, the default) or on Dask")
    net.add_argument("--scheduler", help="address of an existing Dask scheduler, e.g. tcp://10.0.0.5:8786 "
                                         "(default with --executor dask: start a local cluster)")
    net.add_argument("--workers", type=int, default=2, help="worker processes of the local Dask cluster (default 2)")
    net.add_argument("--retries", type=int, default=2,
                     help="times a branch is run again after its worker died (local Dask cluster; default 2)")
    run.set_defaults(func=_cmd_run)

    daily = sub.add_parser("daily", help="the day's reminder sends and tomorrow's confirmation call list",
                           description="Plan the reminder messages due on --date (every appointment booked before "
                                       "the day began, 00:00, and not cancelled by then) and tomorrow's "
                                       "confirmation calls; writes <outreach-dir>/daily/YYYY-MM-DD/ (owner-only).")
    daily.add_argument("--date", required=True, help="the day planned, YYYY-MM-DD (e.g. $(date +%%F) in cron)")
    daily.add_argument("--source", required=True, help="folder, file, workbook or database URL of the clinic")
    daily.add_argument("--mapping", help="mapping file (YAML)")
    daily.add_argument("--out", default="reports",
                       help="the monthly run's reports folder (default ./reports): the outreach folder is beside it")
    daily.add_argument("--outreach-dir", dest="outreach_dir", default=None,
                       help="outreach folder, as for 'run' (default: beside --out); the lists go to its daily/ folder")
    daily.add_argument("--rules", default=None, metavar="DIR",
                       help="your own rule files; campaigns.yaml there defines the reminder campaign")
    daily.add_argument("--no-risk-model", dest="risk_model", action="store_false",
                       help="order the call list by earlier no-shows instead of fitting the no-show model (faster)")
    daily.set_defaults(func=_cmd_daily)

    dd = sub.add_parser("data-dictionary", help="print (or write) the data dictionary")
    dd.add_argument("--out", help="file to write, e.g. docs/data_dictionary.md")
    dd.set_defaults(func=_cmd_data_dictionary)

    from crm_analysis.profile.lookup_cli import add_lookup_parser

    add_lookup_parser(sub)
    from crm_analysis.profile.serve_cli import add_serve_parser

    add_serve_parser(sub)
    return parser


def _without_secrets(text: str, args: argparse.Namespace) -> str:
    """`text` without the secrets of the database URLs given on the command line (``--source``, ``--out``)."""
    from crm_analysis.redaction import redact_secrets  # standard library only: an error in `lookup` stays fast

    for given in (getattr(args, "source", None), getattr(args, "out", None)):
        if isinstance(given, str) and "://" in given:
            text = redact_secrets(text, given)
    return text


def console_main() -> None:
    """The ``crm-analysis`` command: :func:`main`, then the process ends at once with its status.

    After a monthly run the interpreter's own teardown frees every object left, one by one: about a second
    of the run's wall time. Everything is written and closed by then, so the exit handlers (``atexit``) run
    and the process ends without that teardown.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()  # what the interpreter runs at exit, before its teardown
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``crm-analysis`` command; returns the exit status."""
    # jsonschema (under papermill's nbformat) imports rfc3987_syntax, which builds ~35 Lark parsers on import:
    # 1.5 CPU-seconds a run, for the IRI formats that no notebook schema uses (python-jsonschema/jsonschema#1428).
    # Without it jsonschema leaves those two formats unchecked. Only this command's process is affected.
    sys.modules.setdefault("rfc3987_syntax", None)
    from crm_analysis.exceptions import MAX_SHOWN_MESSAGE, CrmAnalysisError, DataValidationError, shorten

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DataValidationError as err:
        source = getattr(err, "source", None)
        message = f"error: the data{f' in {source}' if source else ''} does not meet the contract.\n{err}"
        print(_without_secrets(message, args), file=sys.stderr)
        return EXIT_BAD_INPUT
    except (CrmAnalysisError, ValueError) as err:
        if args.debug:
            raise
        code = EXIT_BAD_INPUT if isinstance(err, ValueError) else EXIT_FAILED
        print(f"error: {shorten(_without_secrets(str(err), args), MAX_SHOWN_MESSAGE)}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - one line for users; --debug for developers
        if args.debug:
            raise
        first_line = shorten(_without_secrets((str(err).strip().splitlines() or [""])[0], args), MAX_SHOWN_MESSAGE)
        print(f"error: {type(err).__name__}: {first_line} (run with --debug for details)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
