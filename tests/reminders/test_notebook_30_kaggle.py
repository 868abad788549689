"""Notebook 30 runs on the real Kaggle no-show export (SMS flag only) and says what it cannot estimate."""

from __future__ import annotations

import pytest

from tests.conftest import KAGGLE_NOSHOW, PROJECT_ROOT
from tests.notebook_runner import run_notebook

NOTEBOOK = PROJECT_ROOT / "notebooks" / "30_reminders.ipynb"
MAPPING = PROJECT_ROOT / "data" / "mappings" / "kaggle_noshow_2016.yaml"


def _shown(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts += [str(v) for k, v in out.get("data", {}).items() if not k.startswith("image/")]
    return "\n".join(parts)


@pytest.mark.notebook
def test_notebook_30_on_kaggle_export(tmp_path):
    if not KAGGLE_NOSHOW.exists():
        pytest.skip(f"{KAGGLE_NOSHOW} not present")
    nb = run_notebook(NOTEBOOK, tmp_path, source=str(KAGGLE_NOSHOW), mapping=str(MAPPING), as_of="2016-06-08",
                      out_dir=str(tmp_path / "reports"), lang="en")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert not any(o.output_type == "error" for c in code for o in c.outputs)
    shown = _shown(nb)
    print(shown[:600])
    # the headline: SMS reminders lower no-shows of the reminded once lead time is accounted for ...
    assert "Reminders change reminded appointments' no-show rate by -" in shown
    # ... while the crude comparison says they raise them (SMS only went to long-lead appointments)
    assert "The crude comparison (+" in shown
    for skipped in ("no randomised pilot month", "interrupted time series is skipped",
                    "schedules cannot be compared", "The export has no charges"):
        assert skipped in shown
