"""What the monthly run publishes besides the executed notebooks.

- :mod:`~crm_analysis.report.html`: ``report.html``, the management report
  built from the executed notebooks with the code hidden;
- :mod:`~crm_analysis.report.pdf`: ``report.pdf`` (A4) from that HTML through
  WeasyPrint, with the Korean font embedded;
- :mod:`~crm_analysis.report.manifest`: ``manifest.json`` (parameters, input
  hashes, package versions, git commit, timings);
- :mod:`~crm_analysis.report.outreach`: the registry of outreach-list
  producers and the private writer of their lists;
- :mod:`~crm_analysis.report.sections`: notebook sections that show a reason instead of failing on thin data.

Nothing is imported here: a notebook kernel that imports ``report.sections`` does not pay for nbformat
and WeasyPrint, which only the monthly run's own process needs.
"""
