"""Run the monthly job as a user would (``crm-analysis run ...``) and check what any publishing run must hold."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from crm_analysis.cli import main

__all__ = ["Published", "run_month_cli"]


@dataclass
class Published:
    """What one ``crm-analysis run`` published."""

    month_dir: Path
    outreach_dir: Path
    manifest: dict
    kpis: dict
    stdout: str
    stderr: str

    @property
    def skipped(self) -> dict[str, str]:
        """Analysis name -> reason, for every section the run skipped."""
        return {s["analysis"]: s["reason"] for s in self.manifest["skipped_sections"]}

    @property
    def report_html(self) -> str:
        return (self.month_dir / "report.html").read_text(encoding="utf-8")


def run_month_cli(capsys, tmp_path: Path, month: str, source: str | Path, *extra: str, pdf: bool = False) -> Published:
    """``crm-analysis run --month MONTH --source SOURCE [extra]`` into `tmp_path`; it must exit 0 and publish.

    Checks every publishing run's promises: exit 0, no traceback on the console, ``report.html`` and
    ``kpis.json`` published, every skipped section (kpis.json, notebooks, outreach) listed in the
    manifest with a reason, and every unavailable KPI section has ``reason`` and ``reason_ko``.
    """
    out, outreach = tmp_path / "reports", tmp_path / "outreach"
    args = ["run", "--month", month, "--source", str(source), "--out", str(out), "--outreach-dir", str(outreach),
            *extra, *([] if pdf else ["--no-pdf"])]
    capsys.readouterr()
    status = main(args)
    captured = capsys.readouterr()
    print(captured.out, captured.err, sep="\n")
    assert status == 0, f"crm-analysis {' '.join(args)} exited {status}:\n{captured.err[-3000:]}"
    assert "Traceback" not in captured.out + captured.err
    month_dir = out / month
    assert (month_dir / "report.html").is_file() and (month_dir / "kpis.json").is_file()
    assert (month_dir / "report.pdf").is_file() == pdf
    manifest = json.loads((month_dir / "manifest.json").read_text(encoding="utf-8"))
    kpis = json.loads((month_dir / "kpis.json").read_text(encoding="utf-8"))
    for item in manifest["skipped_sections"]:
        assert item["analysis"] and item["where"] and len(item["reason"]) > 20, item
    for name, block in kpis["sections"].items():
        if not block["available"]:
            assert block["reason"] and block["reason_ko"], name
            assert any(s["analysis"] == name and s["where"] == "kpis.json" for s in manifest["skipped_sections"])
    return Published(month_dir, outreach / month, manifest, kpis, captured.out, captured.err)
