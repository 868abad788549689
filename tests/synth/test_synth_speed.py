"""The default demo clinic is quick to make (timing printed, not asserted tightly)."""

from __future__ import annotations

import time

from crm_analysis import synth


def test_default_clinic_generate_and_write(tmp_path):
    t0 = time.perf_counter()
    clinic = synth.generate_clinic()
    t1 = time.perf_counter()
    clinic.write(tmp_path)
    t2 = time.perf_counter()
    print(f"\n[synth] default clinic (20,000 patients): generate {t1 - t0:.2f}s, write CSV {t2 - t1:.2f}s, "
          f"total {t2 - t0:.2f}s; {clinic}")
    assert clinic.truth["seed"] == 42 and len(clinic.tables["patients"]) == 20_000
    assert t2 - t0 < 60  # generous; the target is < 10 s on two cores
