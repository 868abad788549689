"""What reminders keep per booking: extra attended visits against the demo clinic's truth, and the old overstatement."""

from __future__ import annotations

import numpy as np
import pytest

from crm_analysis.reminders.adjusted import period_masks
from crm_analysis.reminders.bookings import BookingEffectModel, planned_schedule
from crm_analysis.reminders.rules import load_rules, rules_within

PERIODS = ("1d", "3d+1d+2h")


def _window_rules(table, overrides=None):
    return rules_within(overrides, table["scheduled_at"].min(), table["scheduled_at"].max())[0]


@pytest.fixture(scope="module")
def bookings_model(rem_table):
    return BookingEffectModel(_window_rules(rem_table)).fit(rem_table)


def test_planned_schedule_is_known_at_booking(rem_table):
    planned, source = planned_schedule(rem_table, _window_rules(rem_table))
    eligible, at = rem_table["eligible"].to_numpy(), rem_table["scheduled_at"]
    assert source == "rollouts"
    assert set(planned[eligible & (at >= "2025-09-01").to_numpy()]) == {"3d+1d+2h"}
    assert set(planned[eligible & ((at >= "2024-09-01") & (at < "2025-09-01")).to_numpy()]) == {"1d"}
    assert set(planned[~eligible]) == {"none"}
    pilot = eligible & (rem_table["month"].astype(str) == "2024-06").to_numpy()
    assert planned[pilot].isna().all() and planned[~pilot].notna().all()
    # why "received" cannot be the exposure of a cancellation: the later messages of a cancelled appointment are
    # never sent, so most cancelled appointments planned a reminder have no reminder row at all
    cancelled = (rem_table["cancelled"] == 1).to_numpy() & (planned != "none").to_numpy() & ~pilot
    share = rem_table["sent_any"].to_numpy()[cancelled].mean()
    print(f"\ncancelled bookings with a reminder planned: {cancelled.sum()}, with any message sent: {share:.1%}")
    assert share < 0.5
    sent, source = planned_schedule(rem_table, {"rollouts": [], "pilot_month": None})
    assert source == "sent" and set(sent) == {"sent", "none"}
    assert ((sent == "sent").to_numpy() == rem_table["sent_any"].to_numpy()).all()


def test_extra_visits_per_booking_cover_the_truth_and_the_old_formula_does_not(bookings_model, rem_table, rem_model,
                                                                              rem_truth):
    """Reminders avoid no-shows but cause cancellations, so they keep fewer visits than no-shows avoided.

    New: extra attended visits per booking (cancelled bookings included), two logistic stages with the schedule
    planned at booking. Old (the cost-benefit's former figure): no-shows avoided per reminded non-cancelled
    appointment, from the no-show model. Truth: the generator's per-booking counterfactuals (truth.json,
    reminders.rollout_periods[period].per_booking).
    """
    planned = bookings_model.planned(rem_table).to_numpy()
    r = load_rules()
    for period in PERIODS:
        truth = rem_truth["rollout_periods"][period]["per_booking"]
        new = bookings_model.effects(rem_table, planned == period)
        visits, no_shows, cancellations = new["visits"], new["no_shows"], new["cancellations"]
        old_rows = period_masks(rem_table, r)[period] & rem_table["reminded"].to_numpy()
        old = rem_model.avoided_by_group(rem_table, np.zeros(len(rem_table)), old_rows).iloc[0] / old_rows.sum()
        print(f"\n[{period}] {visits.n} bookings (cancelled included), {int(old_rows.sum())} reminded non-cancelled\n"
              f"  extra attended visits per booking  {visits.estimate:.4f} [{visits.ci_low:.4f}, {visits.ci_high:.4f}]"
              f"  truth {truth['extra_visits']:.4f}\n"
              f"  no-shows avoided per booking       {no_shows.estimate:.4f} [{no_shows.ci_low:.4f}, "
              f"{no_shows.ci_high:.4f}]  truth {truth['no_shows_avoided']:.4f}\n"
              f"  extra cancellations per booking    {cancellations.estimate:.4f} [{cancellations.ci_low:.4f}, "
              f"{cancellations.ci_high:.4f}]  truth {truth['extra_cancellations']:.4f} "
              f"({truth['cancellations_none']:.3f} -> {truth['cancellations_planned']:.3f})\n"
              f"  old: no-shows avoided per reminded non-cancelled appointment {old['no_shows_avoided']:.4f} "
              f"[{old['ci_low']:.4f}, {old['ci_high']:.4f}]")
        assert visits.contains(truth["extra_visits"])
        assert no_shows.contains(truth["no_shows_avoided"])
        assert cancellations.contains(truth["extra_cancellations"]) and cancellations.ci_low > 0
        # the old figure overstates what reminders keep: its interval misses the true extra visits
        assert not old["ci_low"] <= truth["extra_visits"] <= old["ci_high"]
        assert old["no_shows_avoided"] > visits.ci_high
        # extra visits = no-shows avoided - extra cancellations, booking by booking (no slot refilled)
        assert visits.estimate == pytest.approx(no_shows.estimate - cancellations.estimate, abs=1e-12)


def test_slot_refill_rate_counts_refilled_cancellations(bookings_model, rem_table, rem_truth):
    refill = BookingEffectModel(_window_rules(rem_table, {"slot_refill_rate": 0.5})).fit(rem_table)
    planned = refill.planned(rem_table).to_numpy()
    truth = rem_truth["rollout_periods"]["3d+1d+2h"]["per_booking"]
    plain = bookings_model.effects(rem_table, planned == "3d+1d+2h")
    half = refill.effects(rem_table, planned == "3d+1d+2h")
    expected = truth["extra_visits"] + 0.5 * truth["extra_cancellations"]
    print(f"\nslot refill 0.5: extra visits {half['visits'].estimate:.4f} [{half['visits'].ci_low:.4f}, "
          f"{half['visits'].ci_high:.4f}], truth {expected:.4f}; no refill {plain['visits'].estimate:.4f}")
    assert half["visits"].estimate == pytest.approx(
        plain["visits"].estimate + 0.5 * plain["cancellations"].estimate, abs=1e-12)
    assert half["visits"].contains(expected) and half["visits"].extras["refill_rate"] == 0.5
    by_month = refill.effects_by_group(rem_table, rem_table["month"].astype(str).to_numpy())
    np.testing.assert_allclose(by_month["extra_visits"],
                               by_month["no_shows_avoided"] - 0.5 * by_month["extra_cancellations"], atol=1e-9)


def test_effects_by_month_add_up(bookings_model, rem_table):
    months = rem_table["month"].astype(str).to_numpy()
    by = bookings_model.effects_by_group(rem_table, months)
    planned = bookings_model.planned(rem_table).to_numpy()
    overall = bookings_model.effects(rem_table, planned != "none")["visits"]
    assert by["bookings"].sum() == overall.n
    assert by["extra_visits"].sum() / overall.n == pytest.approx(overall.estimate)
    assert (by["extra_visits_ci_low"] < by["extra_visits"]).all() and (by["extra_visits"] < by["extra_visits_ci_high"]).all()
    assert "2024-06" not in by.index  # the pilot month: the arm of a cancelled appointment is unknown
    summary = bookings_model.summary
    print("\n" + summary.round(3).to_string())
    assert set(summary["stage"]) == {"cancellation", "no_show"} and set(summary["plan"]) == set(PERIODS)
    assert (summary.loc[summary["stage"] == "cancellation", "odds_ratio"] > 1).all()
    assert "BookingEffectModel" in bookings_model._repr_html_()


def test_export_without_cancellations_has_no_cancellation_stage(rem_table):
    """Like the Kaggle export: no cancellation is recorded, so visits per booking are 1 - no-show rate."""
    table = rem_table.loc[(rem_table["cancelled"] != 1).to_numpy()].reset_index(drop=True)
    model = BookingEffectModel(_window_rules(table)).fit(table)
    e = model.effects(table, (model.planned(table) == "3d+1d+2h").to_numpy())
    assert model.cancellation_ is None and np.isnan(e["cancellations"].estimate)
    assert e["visits"].estimate == pytest.approx(e["no_shows"].estimate, abs=1e-12)
