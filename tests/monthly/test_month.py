"""The month: each model fitted once, saved and loaded unchanged, an analyst's rules applied everywhere."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pandas as pd
import pytest
import yaml

from crm_analysis.exceptions import InsufficientDataError, RuleFileError
from crm_analysis.io import mapped
from crm_analysis.monthly.month import MODELS, SHARED_PIECES, Month, fit_models
from crm_analysis.monthly.rules import RULE_FILES, load_rule_set
from tests.conftest import DEMO_END

SHIPPED = load_rule_set(None)


@pytest.fixture(scope="module")
def saved_month(demo_clinic, tmp_path_factory):
    """Every model of the demo month fitted in two worker processes and saved, then opened from the folder."""
    folder = tmp_path_factory.mktemp("models")
    month = fit_models(Month(demo_clinic, DEMO_END), folder, jobs=2)
    return month, folder


def test_every_model_is_saved_owner_only_and_loads_without_refitting(saved_month, monkeypatch):
    month, folder = saved_month
    assert sorted(p.stem for p in folder.glob("*.pkl")) == sorted(MODELS + SHARED_PIECES)
    assert all(p.stat().st_mode & 0o077 == 0 for p in folder.glob("*.pkl"))
    from crm_analysis import churn, features
    from crm_analysis.churn import model as churn_model
    from crm_analysis.reminders import evaluation
    from crm_analysis.value import migration  # noqa: F401 - imported before the patches below: loading the saved
    # migration imports it, and it would keep the patched patient_features for the tests after this one

    def refit(*args, **kwargs):
        raise AssertionError("a saved model was fitted again")

    monkeypatch.setattr(churn_model.ChurnModel, "fit", refit)
    monkeypatch.setattr(evaluation, "evaluate_reminders", refit)
    monkeypatch.setattr(features, "patient_features", refit)  # the shared pieces are loaded, not computed
    monkeypatch.setattr(churn, "survival_data", refit)
    for name in MODELS + SHARED_PIECES:
        month.get(name)
    # loaded as views of the saved file: every process of the run that loads it shares one copy
    recency = month.features["recency_days"].to_numpy()
    assert not recency.flags.owndata and recency.flags.writeable


def test_saved_models_equal_models_fitted_here(saved_month, demo_clinic):
    month, _ = saved_month
    here = Month(demo_clinic, DEMO_END)
    pd.testing.assert_frame_equal(month.recall, here.recall)
    pd.testing.assert_frame_equal(month.churn.predict_return(horizons=(180,)), here.churn.predict_return(horizons=(180,)))
    saved, fitted = month.reminders.adjusted, here.reminders.adjusted
    assert saved.keys() == fitted.keys()
    for key in saved:
        for a, b in zip(saved[key], fitted[key]):
            assert (a.estimate, a.ci_low, a.ci_high) == pytest.approx((b.estimate, b.ci_low, b.ci_high), rel=1e-12)
    pd.testing.assert_frame_equal(month.reminders.table, here.reminders.table)
    pd.testing.assert_frame_equal(month.campaigns.sends, here.campaigns.sends)
    assert month.clv.predict_value().sum() == pytest.approx(here.clv.predict_value().sum(), rel=1e-12)
    pd.testing.assert_frame_equal(month.features, here.features)
    pd.testing.assert_frame_equal(month.gaps, here.gaps)
    pd.testing.assert_frame_equal(month.migration.counts, here.migration.counts)
    pd.testing.assert_frame_equal(month.migration.vip_left, here.migration.vip_left)


def test_string_columns_round_trip_exactly():
    from crm_analysis.monthly.month import _FramePickler

    frame = pd.DataFrame({"dept": ["내과", "소아과", "내과"] * 1000, "mixed": ["a", None, "b"] * 1000,
                          "n": np.arange(3000), "text": pd.array(["x", "y", "z"] * 1000, dtype="string")})
    buffer = io.BytesIO()
    _FramePickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump({"table": frame})
    back = pickle.loads(buffer.getvalue())["table"]
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert back["mixed"].iloc[1] is None and back["dept"].dtype == object
    restore, (coded, columns) = _FramePickler(io.BytesIO()).reducer_override(frame)
    assert columns == ["dept"] and coded["dept"].dtype == "category"  # stored as codes; "mixed" holds a None


def test_a_thin_data_error_is_kept_and_raised_each_time(demo_clinic):
    month = Month(demo_clinic, DEMO_END)
    calls = []

    def thin():
        calls.append(1)
        raise InsufficientDataError("churn", "too few gaps", "간격이 적음")

    with pytest.raises(InsufficientDataError, match="too few gaps"):
        month._get("churn", thin)
    with pytest.raises(InsufficientDataError, match="too few gaps"):
        month.churn
    assert calls == [1]
    with pytest.raises(KeyError, match="unknown model"):
        month.get("nope")


def test_the_clinic_is_cut_at_as_of_and_read_only_when_needed(demo_dir):
    opened = Month.open(demo_dir, "2026-06-30")
    assert not isinstance(opened._clinic, type(None)) and callable(opened._clinic)  # nothing read yet
    assert opened.clinic.as_of == pd.Timestamp("2026-06-30")
    assert opened.clinic.visits["visit_date"].max() <= pd.Timestamp("2026-06-30")


def test_a_kernel_reads_the_runs_copy_once_and_a_changed_copy_again(demo_clinic, demo_dir, tmp_path, monkeypatch):
    """The run's notebooks, run in turn on one kernel, share one read of its validated copy; anything else is
    read each time."""
    import crm_analysis.io as io_package
    from crm_analysis.io.forked_load import write_run_copy

    copy = write_run_copy(demo_clinic.snapshot("2026-06-30"), tmp_path)
    reads = []
    real = io_package.load_clinic
    monkeypatch.setattr(io_package, "load_clinic", lambda *a, **k: reads.append(a[0]) or real(*a, **k))
    first, second = (Month.open(copy, "2026-06-30").clinic for _ in range(2))
    assert second is first and len(reads) == 1
    write_run_copy(demo_clinic.snapshot("2026-05-31"), tmp_path)  # another run's copy in the same place
    assert Month.open(copy, "2026-05-31").clinic.as_of == pd.Timestamp("2026-05-31") and len(reads) == 2
    Month.open(demo_dir, "2026-06-30").clinic, Month.open(demo_dir, "2026-06-30").clinic
    assert len(reads) == 4, "a clinic's own folder is read each time (it may change under JupyterLab)"


# --------------------------------------------------------------------------- the analyst's rules

def _write(folder, name, doc):
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return folder


def test_a_changed_churn_rule_changes_the_month(demo_clinic, tmp_path):
    rules = _write(tmp_path / "rules", "churn", {"churn": {"max_return_probability": 0.5}})
    shipped, mine = Month(demo_clinic, DEMO_END), Month(demo_clinic, DEMO_END, rules=rules)
    from crm_analysis.churn import churn_status, load_churn_rules

    before = int(churn_status(shipped.churn, rules=load_churn_rules(None))["churned"].sum())
    after = int(churn_status(mine.churn, rules=load_churn_rules(mine.rules.churn))["churned"].sum())
    print(f"churned at P(return) < 0.2: {before}; at < 0.5: {after}")
    assert after > before


def test_a_changed_segment_rule_changes_the_segments(demo_clinic, tmp_path):
    from crm_analysis.value.segmentation import RULES_DIR

    doc = yaml.safe_load((RULES_DIR / "segments.yaml").read_text(encoding="utf-8"))
    doc["segments"] = doc["segments"][:1]  # only the first segment; everyone else is the catch-all
    mine = Month(demo_clinic, DEMO_END, rules=_write(tmp_path / "rules", "segments", doc))
    shipped = Month(demo_clinic, DEMO_END)
    counts = mine.segments().value_counts()
    print(counts.to_dict(), shipped.segments().value_counts().to_dict())
    assert (counts > 0).sum() == 2 and (shipped.segments().value_counts() > 0).sum() > 2


def test_rule_folder_checks(tmp_path):
    assert load_rule_set("") == SHIPPED and SHIPPED.describe()["files"] == dict.fromkeys(RULE_FILES, "default")
    with pytest.raises(RuleFileError, match="no such folder"):
        load_rule_set(tmp_path / "missing")
    _write(tmp_path / "typo", "segmnets", {"a": 1})
    with pytest.raises(RuleFileError, match="segmnets.yaml is not a rule file"):
        load_rule_set(tmp_path / "typo")
    rules = load_rule_set(_write(tmp_path / "ok", "vip", {"capacity": 10}))
    assert rules.vip.name == "vip.yaml" and rules.churn is None
    assert rules.describe()["files"]["vip"]["sha256"] and rules.describe()["files"]["churn"] == "default"


def test_a_kept_thin_data_error_is_saved_and_raised_from_the_saved_month(demo_clinic, tmp_path):
    from crm_analysis.exceptions import MissingTableError

    month = Month(demo_clinic, DEMO_END)
    with pytest.raises(MissingTableError):
        month._get("campaigns", lambda: (_ for _ in ()).throw(MissingTableError("contacts", "campaign lists")))
    month.save(tmp_path, ["campaigns"])
    saved = Month(demo_clinic, DEMO_END, saved=tmp_path)
    with pytest.raises(MissingTableError, match="contacts") as caught:
        saved.campaigns
    assert caught.value.table == "contacts" and caught.value.reason_ko.startswith("campaign lists")
    assert saved.summary.set_index("model").loc["campaigns", "state"].startswith("skipped: campaign lists needs")


def test_a_month_opened_while_the_run_fits_waits_for_the_saved_model(demo_clinic, tmp_path):
    """A notebook started early waits for a model the run is still fitting, instead of fitting it twice."""
    import threading
    import time

    from crm_analysis.monthly.month import fitting_into

    fitted = Month(demo_clinic, DEMO_END)
    fitted._get("churn_comparison", lambda: pd.DataFrame({"model": ["cox"], "concordance": [0.7]}))
    opened = Month(demo_clinic, DEMO_END, saved=tmp_path)
    with fitting_into(tmp_path):
        saver = threading.Timer(0.4, fitted.save, args=(tmp_path, ["churn_comparison"]))
        started = time.perf_counter()
        saver.start()
        got = opened._get("churn_comparison", lambda: pytest.fail("fitted again while the run was fitting it"))
        waited = time.perf_counter() - started
    print(f"waited {waited:.2f} s for the saved model")
    assert waited >= 0.35
    pd.testing.assert_frame_equal(got, fitted.churn_comparison)
    assert not (tmp_path / ".fitting").exists()
    # Once the run has finished fitting, a model it did not save is fitted on use, without waiting.
    started = time.perf_counter()
    assert opened._get("clv", lambda: "fitted here") == "fitted here"
    assert time.perf_counter() - started < 0.2


def test_model_workers_inherit_the_month_without_pickling_it(demo_clinic, tmp_path, monkeypatch):
    from crm_analysis.monthly.month import fit_and_save, model_workers

    month = Month(demo_clinic, DEMO_END)
    month._get("churn_comparison", lambda: pd.DataFrame({"model": ["cox"]}))

    def refuse(self):
        raise AssertionError("the Month was pickled to a worker")

    monkeypatch.setattr(Month, "__reduce__", refuse, raising=False)
    with model_workers(month, 2) as pool:
        assert pool.submit(fit_and_save, ("churn_comparison",), tmp_path).result() == ["churn_comparison"]
    assert (tmp_path / "churn_comparison.pkl").is_file()


def _inherited_results() -> int:
    from crm_analysis.monthly.month import inherited

    return len(inherited()._results)


def test_a_worker_lets_go_of_what_it_saved(demo_clinic, tmp_path):
    """A model worker forgets its results once they are saved (at a million patients, GiBs it would hold while
    it waits idle for the run to end); the Month that gave it them keeps its own."""
    from crm_analysis.monthly.month import fit_and_save, model_workers

    month = Month(demo_clinic, DEMO_END)
    month._get("churn_comparison", lambda: pd.DataFrame({"model": ["cox"]}))
    with model_workers(month, 1) as pool:
        assert pool.submit(_inherited_results).result() == 1
        pool.submit(fit_and_save, ("churn_comparison",), tmp_path).result()
        assert pool.submit(_inherited_results).result() == 0
    assert mapped.load(tmp_path / "churn_comparison.pkl")["model"].tolist() == ["cox"]
    assert list(month._results) == ["churn_comparison"]


def test_a_worker_fitting_with_niceness_gives_way_for_good(demo_clinic, tmp_path):
    """fit_and_save(niceness=n) lowers its worker's priority to n, once (the run's workers for the shorter
    models: a worker fitting two groups is not lowered twice)."""
    import os

    from crm_analysis.monthly.month import fit_and_save, model_workers

    month = Month(demo_clinic, DEMO_END)
    month._get("churn_comparison", lambda: pd.DataFrame({"model": ["cox"]}))
    before = os.nice(0)
    with model_workers(month, 1) as pool:
        for _ in range(2):
            pool.submit(fit_and_save, ("churn_comparison",), tmp_path, niceness=3).result()
        assert pool.submit(os.nice, 0).result() == max(before, 3)
    assert os.nice(0) == before  # this process is untouched
