"""One clinic's month: the data as known at ``as_of``, the rules, and the month's models, each fitted once.

:class:`Month` is what the KPI step, every notebook and the outreach lists
share. Its models (:data:`MODELS`: the reminder evaluation with its no-show
model, the churn model and its back-test, the recall table, lifetime value
and its back-test, the campaign plan) are computed on first use and kept.
The monthly run fits them once, in parallel worker processes
(:func:`fit_models`), and saves them (pickles) in its private folder; the KPI
step and the notebooks open that folder and load them, so nothing is fitted
twice in a run. A notebook run by hand, with no saved models, fits what it
uses itself.

In JupyterLab::

    from crm_analysis.monthly import Month
    month = Month.open("data/demo", "2026-10-31")             # the shipped rules
    month.churn.summary                                       # fitted on first use
    mine = Month.open("data/demo", "2026-10-31", rules="my_rules/")

A model the data cannot support raises
:class:`~crm_analysis.exceptions.InsufficientDataError` (or, for the
reminder model, :class:`~crm_analysis.exceptions.CrmAnalysisError`) each
time it is asked for; the error is kept (and saved) like a result.
"""

from __future__ import annotations

import contextlib
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from crm_analysis.clinic import ClinicData
from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.i18n import check_lang
from crm_analysis.io import mapped
from crm_analysis.memory import free_unused_memory
from crm_analysis.monthly.rules import RuleSet, load_rule_set

__all__ = ["Month", "MODELS", "SHARED_PIECES", "FIT_GROUPS", "FITTING_MARKER", "fit_models", "fitting_into",
           "model_workers", "inherited", "fit_and_save", "lower_priority"]

#: The month's models, in the order they are fitted when all are asked for.
MODELS = ("reminders", "churn", "churn_comparison", "recall", "campaigns", "churn_backtest", "clv", "clv_backtest")
#: Pieces the models are built from that the run also saves, because the notebooks and the lists use them too:
#: each is computed once (at a million patients 20 s and GiBs of working memory each time).
SHARED_PIECES = ("features", "gaps", "migration")
#: How the run splits the fitting between worker processes: each group runs in one process, in order
#: (a later model of a group uses an earlier one: the campaign plan's recall audience is the recall table).
#: A group may also use what a group submitted before it saves (the migration, the features): its worker waits
#: for that file, so a group must come after the groups it waits for.
FIT_GROUPS = (("reminders",), ("features", "gaps", "churn", "recall", "campaigns", "churn_comparison"),
              ("migration", "clv_backtest", "clv", "churn_backtest"))
#: Clinic-level errors a model may raise on thin data; they are kept like results.
_KEPT_ERRORS = (CrmAnalysisError,)
#: A file in a models folder while the run is still fitting into it: a :class:`Month` opened on the folder
#: waits for a model it needs rather than fitting it a second time (see :func:`fitting_into`).
FITTING_MARKER = ".fitting"
#: How often a waiting :class:`Month` looks for the model it needs (seconds).
_POLL_SECONDS = 0.05


def _wait_while_fitting(path: Path) -> None:
    """Wait until the model file `path` exists or its folder is no longer being fitted into."""
    marker = path.parent / FITTING_MARKER
    while marker.exists() and not path.exists():
        time.sleep(_POLL_SECONDS)


@contextlib.contextmanager
def fitting_into(folder: str | Path) -> Iterator[Path]:
    """Mark `folder` as being fitted into for the duration of the block.

    Meanwhile a :class:`Month` opened with ``saved=folder`` (e.g. in a notebook that the run started
    early) waits for each model it asks for to be saved there, instead of fitting it itself. When the
    block ends, however it ends, the mark goes: a model that was never saved is then fitted on use.
    """
    folder = Path(folder)
    marker = folder / FITTING_MARKER
    marker.touch(mode=0o600)
    try:
        yield folder
    finally:
        marker.unlink(missing_ok=True)


class Month:
    """One clinic's month: the snapshot at `as_of`, its rules and its models.

    Parameters
    ----------
    clinic : ClinicData or callable
        The clinic, cut to `as_of` on first use unless it already is a snapshot at `as_of`; or a function
        returning it, called on first use (:meth:`open`).
    as_of : str or Timestamp
        The month's last day (explicit: nothing defaults to today).
    rules : str, Path, RuleSet or None
        The analyst's rule folder (:func:`~crm_analysis.monthly.rules.load_rule_set`); None for the
        shipped rules.
    lang : {"ko", "en"}
        Language of the campaign messages and segment labels.
    saved : str or Path, optional
        A folder of models saved by :meth:`save` (the monthly run's); models found there are loaded
        instead of fitted.

    Attributes
    ----------
    clinic : ClinicData
        The snapshot at `as_of`.
    as_of : Timestamp
    rules : RuleSet
    lang : str
    """

    def __init__(self, clinic: ClinicData, as_of, *, rules: str | Path | RuleSet | None = None, lang: str = "ko",
                 saved: str | Path | None = None) -> None:
        self.as_of = pd.Timestamp(as_of).normalize()
        self._clinic = clinic
        self.rules = load_rule_set(rules)
        self.lang = check_lang(lang)
        self.saved = Path(saved) if saved else None
        self._results: dict[str, Any] = {}
        #: What this process is fitting (fit_and_save): computed here, never waited for.
        self._fitting_here: frozenset[str] = frozenset()

    @property
    def clinic(self) -> ClinicData:
        """The clinic as known at `as_of` (loaded on first use when the month was opened from a source)."""
        if callable(self._clinic):  # Month.open: read the source only when something needs the data
            self._clinic = self._clinic()
        if self._clinic.as_of is None or self._clinic.as_of != self.as_of:
            self._clinic = self._clinic.snapshot(self.as_of)
        return self._clinic

    @classmethod
    def open(cls, source: str | Path, as_of, *, mapping: str | Path | None = None,
             rules: str | Path | RuleSet | None = None, lang: str = "ko", models: str | Path | None = None) -> "Month":
        """Load the clinic from `source` (as :func:`crm_analysis.load_clinic`) and open its month.

        Parameters
        ----------
        source : str or Path
            Clinic data: folder, file or database URL (or the monthly run's private snapshot).
        as_of : str or Timestamp
        mapping : str or Path, optional
            Mapping file; None or ``""`` for none.
        rules : str, Path, RuleSet or None
            The analyst's rule folder; None or ``""`` for the shipped rules.
        lang : {"ko", "en"}
        models : str or Path, optional
            The monthly run's saved models; None or ``""``: fit on first use.

        Returns
        -------
        Month
        """
        return cls(lambda: _load(source, mapping or None), as_of, rules=rules or None, lang=lang,
                   saved=models or None)

    def __repr__(self) -> str:
        done = [n for n in MODELS if n in self._results]
        return (f"Month(as_of={self.as_of:%Y-%m-%d}, "
                f"rules={'shipped' if self.rules.folder is None else str(self.rules.folder)}, "
                f"models ready={done})")

    @property
    def summary(self) -> pd.DataFrame:
        """One row per model: ``model`` and ``state`` (``ready``, ``saved`` (loaded on use), ``not fitted``, or
        ``skipped: <reason>`` when the data cannot support it)."""
        rows = []
        for name in MODELS:
            result = self._results.get(name)
            if isinstance(result, BaseException):
                state = f"skipped: {getattr(result, 'reason', None) or result}"
            elif name in self._results:
                state = "ready"
            elif self.saved is not None and (self.saved / f"{name}.pkl").is_file():
                state = "saved"
            else:
                state = "not fitted"
            rows.append({"model": name, "state": state})
        return pd.DataFrame(rows)

    def _repr_html_(self) -> str:
        from html import escape

        return (f"<p><b>Month</b> as of {self.as_of:%Y-%m-%d}, rules: "
                f"{escape('shipped' if self.rules.folder is None else str(self.rules.folder))}</p>"
                + self.summary.to_html(index=False, escape=True))

    # ------------------------------------------------------------------ cached results
    def _get(self, name: str, compute: Callable[[], Any]) -> Any:
        if name not in self._results:
            path = self.saved / f"{name}.pkl" if self.saved else None
            if path is not None and (name in MODELS or name in SHARED_PIECES) and name not in self._fitting_here:
                _wait_while_fitting(path)
            if path is not None and path.is_file():
                self._results[name] = mapped.load(path)  # its arrays are views of the file, shared
            else:
                try:
                    self._results[name] = compute()
                except _KEPT_ERRORS as err:
                    self._results[name] = err
        result = self._results[name]
        if isinstance(result, BaseException):
            raise result
        return result

    def get(self, name: str) -> Any:
        """The model (or piece) `name`: ``month.get("churn")`` is ``month.churn``.

        Handy with :func:`crm_analysis.report.sections.attempt`, which turns a thin-data error into a
        skipped-section stand-in: ``model = attempt(month.get, "churn")``.
        """
        if name not in MODELS and name not in SHARED_PIECES and name != "vips":
            raise KeyError(f"unknown model {name!r}; the month's models are {', '.join(MODELS)}")
        return getattr(self, name)

    def forget(self) -> "Month":
        """Drop every computed or loaded result and hand the freed memory back to the system; returns self.

        For a long-lived process (a model worker, the run itself) that no longer needs them while it waits:
        at a million patients they are GiBs another process of the run may need. They are computed or loaded
        again if asked for.
        """
        self._results.clear()
        free_unused_memory()
        return self

    def fit(self, names: tuple[str, ...] | list[str] = MODELS) -> "Month":
        """Fit (or load) the models `names` now; returns self. Models the data cannot support are skipped."""
        for name in names:
            try:
                getattr(self, name)
            except _KEPT_ERRORS:
                pass
        return self

    def save(self, folder: str | Path, names: tuple[str, ...] | list[str] | None = None) -> list[Path]:
        """Pickle the models (and :data:`SHARED_PIECES`) computed so far, or `names`, into `folder`, one file each;
        returns the files.

        Their arrays are stored so that a Month loading them maps them (:mod:`crm_analysis.io.mapped`): the run's
        notebooks and lists share one copy. The files hold patient-level data: keep `folder` private (the
        monthly run's is 0700).
        """
        folder = Path(folder)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        names = names if names is not None else [n for n in MODELS + SHARED_PIECES if n in self._results]
        return [mapped.dump(self._results[name], folder / f"{name}.pkl", pickler=_FramePickler) for name in names]

    # ------------------------------------------------------------------ cheap pieces (not saved)
    @property
    def features(self) -> pd.DataFrame:
        """:func:`~crm_analysis.features.patient_features` at `as_of`."""
        from crm_analysis.features import patient_features

        return self._get("features", lambda: patient_features(self.clinic, self.as_of))

    def segments(self, lang: str | None = None) -> pd.Series:
        """Each patient's RFM segment (the rule folder's segments), labels in `lang` (None: segment keys)."""
        from crm_analysis.value.segmentation import assign_segments, rfm_scores, segment_names

        seg = self._get("segments", lambda: assign_segments(rfm_scores(self.features), rules=self.rules.segments)
                        ["segment"].rename("segment"))
        if lang is not None:
            seg = seg.cat.rename_categories(segment_names(self.rules.segments, lang=lang))
        return seg

    @property
    def vips(self) -> pd.DataFrame:
        """:func:`~crm_analysis.value.vip.select_vips` with the rule folder's VIP rules."""
        from crm_analysis.value.vip import select_vips

        return self._get("vips", lambda: select_vips(self.features, self.as_of, rules=self.rules.vip))

    @property
    def migration(self):
        """:func:`~crm_analysis.value.migration.segment_migration` from the previous month's end to `as_of` (the
        rule folder's segment and VIP rules)."""
        from crm_analysis.value.migration import previous_month_end, segment_migration

        return self._get("migration", lambda: segment_migration(
            self.clinic, previous_month_end(self.as_of), self.as_of, rules=self.rules.segments,
            vip_rules=self.rules.vip, features_to=self.features))

    @property
    def gaps(self) -> pd.DataFrame:
        """:func:`~crm_analysis.churn.survival_data`: the gaps between visits, up to `as_of`."""
        from crm_analysis.churn import survival_data

        return self._get("gaps", lambda: survival_data(self.clinic, self.as_of))

    # ------------------------------------------------------------------ the models (saved by the run)
    @property
    def reminders(self):
        """:func:`~crm_analysis.reminders.evaluate_reminders`: the reminder evaluation and its no-show model."""
        from crm_analysis.reminders import evaluate_reminders

        return self._get("reminders", lambda: evaluate_reminders(self.clinic, self.as_of, rules=self.rules.reminders))

    @property
    def churn(self):
        """The fitted :class:`~crm_analysis.churn.ChurnModel` (the rule folder's churn rules)."""
        from crm_analysis.churn import ChurnModel

        return self._get("churn", lambda: ChurnModel(rules=self.rules.churn).fit(self.clinic, self.as_of,
                                                                                   gaps=self.gaps))

    @property
    def churn_comparison(self) -> pd.DataFrame:
        """:meth:`ChurnModel.comparison` at 90 days: Cox against Weibull AFT (concordance, calibration)."""
        return self._get("churn_comparison", lambda: self.churn.comparison(90))

    @property
    def recall(self) -> pd.DataFrame:
        """:func:`~crm_analysis.churn.recall_table` from :attr:`churn` (every patient, with ``candidate``)."""
        from crm_analysis.churn import learn_contact_response, recall_table

        def table() -> pd.DataFrame:  # the response to a message learned on the month's gaps, built once
            response = learn_contact_response(self.clinic, self.as_of, self.churn, rules=self.rules.churn,
                                              gaps=self.gaps)
            return recall_table(self.clinic, self.as_of, model=self.churn, segments=self.segments(self.lang),
                                rules=self.rules.churn, response=response)

        return self._get("recall", table)

    def recall_candidates(self) -> pd.DataFrame:
        """The ranked recall list (:func:`~crm_analysis.churn.recall_candidates`) from :attr:`recall`."""
        from crm_analysis.churn import recall_candidates

        return recall_candidates(self.clinic, self.as_of, model=self.churn, rules=self.rules.churn,
                                 table=self.recall)

    @property
    def churn_backtest(self):
        """:func:`~crm_analysis.churn.backtest`: the churn model refitted 180 days back and checked."""
        from crm_analysis.churn import backtest, load_churn_rules

        rules = load_churn_rules(self.rules.churn)  # at the churn definition's horizon, so it checks that
        return self._get("churn_backtest", lambda: backtest(self.clinic, None, int(rules["churn"]["horizon_days"]),
                                                            model={"rules": rules}))

    @property
    def noshow_backtest(self):
        """:func:`~crm_analysis.noshow.noshow_backtest`: the no-show risk model fitted on the 12 months before
        the last three and scored on those three, against its two baselines; on the reminder evaluation's
        random sample of patients when the clinic has more than the reminder rules' ``model.max_patients``."""
        from crm_analysis.figures import month_start
        from crm_analysis.noshow import noshow_backtest, noshow_table
        from crm_analysis.reminders import evaluated_patients

        def backtest():
            # a large clinic: the same random patients as the reminder evaluation (whose table is theirs)
            clinic, _ = evaluated_patients(self.clinic, self.rules.reminders)
            try:  # the reminder evaluation's appointment table, when it could be made: not built twice
                base = self.reminders.table
            except CrmAnalysisError:
                base = None
            table = noshow_table(clinic, self.as_of, self.rules.reminders, base=base)
            return noshow_backtest(table, month_start(self.as_of, 2), as_of=self.as_of, train_months=12)

        return self._get("noshow_backtest", backtest)

    @property
    def clv(self):
        """The fitted :class:`~crm_analysis.value.clv.CLVModel` (12-month horizon)."""
        from crm_analysis.value.clv import CLVModel

        return self._get("clv", lambda: CLVModel(horizon_days=365).fit(self.clinic, self.as_of))

    @property
    def clv_backtest(self):
        """:func:`~crm_analysis.value.clv.clv_backtest`: lifetime value fitted a year back and checked."""
        from crm_analysis.value.clv import clv_backtest

        return self._get("clv_backtest", lambda: clv_backtest(self.clinic, self.as_of - pd.Timedelta(days=365),
                                                              horizon_days=365))

    @property
    def campaigns(self):
        """:func:`~crm_analysis.campaigns.plan_campaigns` for the period after `as_of`, with this month's
        VIP and recall audiences."""
        from crm_analysis.campaigns import plan_campaigns

        def candidate_frame(ids: pd.Series, reason, detail=None) -> pd.DataFrame:  # an audience, best first
            frame = pd.DataFrame({"patient_id": ids.astype(str).to_numpy(), "reason": pd.Series(reason).to_numpy()
                                  if isinstance(reason, pd.Series) else reason})
            return frame if detail is None else frame.assign(detail=pd.Series(detail).astype(object).to_numpy())

        def plan():
            audiences = {}
            vips = self.vips  # as campaigns.audiences.vip_candidates reads them, with this month's VIP rules
            vips = vips[vips["selected"].astype(bool)]
            if "rank" in vips.columns:
                vips = vips.sort_values("rank", kind="stable")
            ids = vips["patient_id"] if "patient_id" in vips.columns else pd.Series(vips.index, index=vips.index)
            vip_frame = candidate_frame(ids, "vip_" + vips["rule"].astype(str))
            audiences["vip_event"] = audiences["vip_birthday"] = vip_frame
            try:
                recall = self.recall_candidates()
            except _KEPT_ERRORS:
                recall = None  # the planner falls back to its rule-based recall audience
            if recall is not None:
                # the recall list's own plain-language reason goes to the staff list
                audiences["recall"] = candidate_frame(recall["patient_id"], "churn_recall_candidate",
                                                      recall["reason"] if "reason" in recall else None)
            return plan_campaigns(self.clinic, self.as_of, config=self.rules.campaigns, lang=self.lang,
                                  candidates=audiences)

        return self._get("campaigns", plan)


#: The monthly run's validated copy as this process last read it: (its folder and files, the clinic). A notebook
#: kernel of the run executes several notebooks in turn, and each opens the same read-only copy.
_RUN_COPY: list[tuple[tuple, ClinicData]] = []


def _load(source: str | Path, mapping: str | Path | None) -> ClinicData:
    """:func:`~crm_analysis.io.load_clinic`, except that the run's validated copy (a folder named
    :data:`~crm_analysis.io.forked_load.CACHE_NAME`) is read once per process while its files stay the same."""
    from crm_analysis.io import load_clinic
    from crm_analysis.io.forked_load import CACHE_NAME

    path = Path(source) if isinstance(source, Path) or "://" not in str(source) else None
    if mapping is not None or path is None or path.name != CACHE_NAME or not path.is_dir():
        return load_clinic(source, mapping=mapping)
    files = sorted(path.iterdir())
    key = (str(path.resolve()), tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files))
    if not _RUN_COPY or _RUN_COPY[0][0] != key:
        _RUN_COPY.clear()  # one copy at a time: a kernel never holds two runs' clinics
        _RUN_COPY.append((key, load_clinic(path)))
    return _RUN_COPY[0][1]


def _restore_strings(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Undo :class:`_FramePickler`: the coded string columns back to plain object columns."""
    return frame.astype({c: object for c in columns}) if columns else frame


class _FramePickler(mapped.MappedPickler):
    """Pickles a DataFrame's all-string object columns as categoricals, and restores them as they were.

    A model's tables repeat a few strings over 10^5 rows (department, status, bands); as Python objects
    they make the reminder evaluation a 100 MB pickle that takes seconds to load in every notebook.
    """

    def reducer_override(self, obj):
        if type(obj) is not pd.DataFrame or obj.columns.has_duplicates:
            return super().reducer_override(obj)
        coded = [c for c in obj.columns if obj[c].dtype == object
                 and pd.api.types.infer_dtype(obj[c], skipna=False) == "string"]
        if not coded:
            return NotImplemented
        return _restore_strings, (obj.astype({c: "category" for c in coded}), coded)


#: What forked workers inherit from the process that forks them (see :func:`model_workers`).
_inherited: dict[str, Any] = {}


@contextlib.contextmanager
def model_workers(month: Month, jobs: int = 2, **shared: Any) -> Iterator[ProcessPoolExecutor]:
    """A pool of `jobs` forked worker processes that inherit `month` (and `shared`) without pickling them.

    A task submitted to the pool is pickled to its worker; a :class:`Month` passed
    that way would copy the whole snapshot to every worker. Here the workers are
    forked (at the first submit) after `month` is put where :func:`inherited`
    finds it, so they share its memory. Submit :func:`fit_and_save` or any
    module-level function that calls :func:`inherited`.

    Yields
    ------
    ProcessPoolExecutor
    """
    _inherited.update(shared, month=month)
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("fork")) as pool:
            yield pool
    finally:
        _inherited.clear()


def inherited(name: str = "month") -> Any:
    """In a worker of :func:`model_workers`: the Month (or a `shared` value) it inherited."""
    return _inherited[name]


def lower_priority(niceness: int) -> int:
    """Lower this process's CPU priority to `niceness` unless it is lower already (it is never raised: only a
    privileged process may do that); returns the niceness now."""
    current = os.nice(0)
    return os.nice(niceness - current) if niceness > current else current


def fit_and_save(names: tuple[str, ...], folder: str | Path, month: Month | None = None, *,
                 niceness: int = 0) -> list[str]:
    """Fit the models `names` of `month` (default: the inherited one) and save them into `folder`; returns the
    names. Models the data cannot support are saved as their thin-data error.

    `niceness` > 0: this process's CPU priority is lowered to that niceness first, unless it is lower
    already (for good: meant for a worker process), so that a longer fit elsewhere, which the run waits for,
    gets the larger share of the cores.
    """
    worker = month is None
    month = inherited() if worker else month
    lower_priority(niceness)
    # What this call fits, it computes (rather than wait for itself). A worker loads what the other workers save
    # (the features, when another worker computes them); in one process, everything is computed here in turn.
    saved, month.saved = month.saved, Path(folder) if worker else None
    month._fitting_here = frozenset(names)
    try:
        _fit_each_and_save(month, names, folder)
    finally:
        month.saved, month._fitting_here = saved, frozenset()
    if worker:  # saved: a worker's copies are no longer needed, and it may wait idle while the run goes on
        month.forget()
    return list(names)


def _fit_each_and_save(month: Month, names: tuple[str, ...], folder: str | Path) -> None:
    for name in names:  # each saved as soon as it is fitted: whoever waits for it goes on meanwhile
        month.fit([name])
        if name in month._results:
            saved, = month.save(folder, [name])
            # the later fits of the group use the saved copy: its arrays are pages of the file, which the
            # processes loading it share, rather than this process's own memory (the gaps: 1.5 GiB at 1M)
            month._results[name] = mapped.load(saved)
        free_unused_memory()  # what the fit built and dropped, before the next fit builds its own


def fit_models(month: Month, folder: str | Path, *, jobs: int = 2,
               groups: tuple[tuple[str, ...], ...] = FIT_GROUPS) -> Month:
    """Fit the month's models in `jobs` worker processes and save them into `folder`; returns a Month
    that loads them from there.

    The workers are forked (:func:`model_workers`), so they share the loaded
    clinic without copying it; each runs one group of :data:`FIT_GROUPS` and
    pickles its models. With ``jobs=1`` (or where fork is unavailable)
    everything is fitted in this process.

    Raises
    ------
    Exception
        Whatever a model raised that is not a thin-data error (a bug fails the run).
    """
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if jobs > 1 and "fork" in _start_methods():
        # a group that uses what an earlier group saves waits for it (see FIT_GROUPS) rather than computing it too
        with fitting_into(folder), model_workers(month, jobs) as pool:
            futures = [pool.submit(fit_and_save, group, folder) for group in groups]
            for future in futures:
                future.result()
    else:
        for group in groups:
            fit_and_save(group, folder, month)
    return Month(month.clinic, month.as_of, rules=month.rules, lang=month.lang, saved=folder)


def _start_methods() -> list[str]:
    from multiprocessing import get_all_start_methods

    return get_all_start_methods()
