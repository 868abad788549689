"""An analyst's rule folder: their own segment, VIP, loyalty, churn, campaign and reminder rules.

``crm-analysis run --rules DIR`` (and every notebook's ``rules`` parameter)
takes a folder holding any of the files in :data:`RULE_FILES`; each file
present replaces the shipped rules of that analysis (``crm_analysis/rules/``),
and each one absent keeps them. The same :class:`RuleSet` reaches the KPIs,
the notebooks and the outreach lists, so a changed rule shows everywhere, and
the run's manifest records which files were used (with their SHA-256).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from crm_analysis.exceptions import RuleFileError

__all__ = ["RULE_FILES", "RuleSet", "load_rule_set"]

#: The rule files a folder may hold: name -> what the rules decide.
RULE_FILES = {
    "segments": "RFM segments (crm_analysis/rules/segments.yaml)",
    "vip": "VIP selection (vip.yaml)",
    "loyalty": "loyalty score and tiers (loyalty.yaml)",
    "churn": "churn definition and recall list (churn.yaml)",
    "campaigns": "campaign definitions, templates and messaging rules (campaigns.yaml)",
    "reminders": "reminder programme, evaluation model and costs (reminders.yaml)",
}


@dataclass(frozen=True)
class RuleSet:
    """The rule files of one run: name -> path of the analyst's file, or None for the shipped rules.

    Attributes
    ----------
    folder : Path or None
        The analyst's folder (None: every rule is the shipped default).
    files : dict of str to Path
        The files found in `folder`, by rule name (see :data:`RULE_FILES`).
    """

    folder: Path | None = None
    files: dict = field(default_factory=dict)

    def path(self, name: str) -> Path | None:
        """The analyst's file for rule `name`, or None for the shipped default."""
        if name not in RULE_FILES:
            raise KeyError(f"unknown rule {name!r}; known: {', '.join(RULE_FILES)}")
        return self.files.get(name)

    @property
    def segments(self) -> Path | None:
        return self.path("segments")

    @property
    def vip(self) -> Path | None:
        return self.path("vip")

    @property
    def loyalty(self) -> Path | None:
        return self.path("loyalty")

    @property
    def churn(self) -> Path | None:
        return self.path("churn")

    @property
    def campaigns(self) -> Path | None:
        return self.path("campaigns")

    @property
    def reminders(self) -> Path | None:
        return self.path("reminders")

    def describe(self) -> dict:
        """For the manifest: the folder and, per rule, ``"default"`` or the file's name and SHA-256."""
        return {"folder": "" if self.folder is None else str(self.folder),
                "files": {name: ("default" if name not in self.files else
                                 {"file": self.files[name].name,
                                  "sha256": hashlib.sha256(self.files[name].read_bytes()).hexdigest()})
                          for name in RULE_FILES}}


def load_rule_set(folder: str | Path | RuleSet | None) -> RuleSet:
    """The rule files in `folder` (``<name>.yaml`` or ``.yml`` for each name of :data:`RULE_FILES`).

    Parameters
    ----------
    folder : str, Path, RuleSet or None
        None or ``""``: the shipped rules throughout.

    Returns
    -------
    RuleSet

    Raises
    ------
    RuleFileError
        If the folder does not exist, or holds a YAML file that is not one of
        :data:`RULE_FILES` (a misspelt name would otherwise be ignored without a word).
    """
    if isinstance(folder, RuleSet):
        return folder
    if folder is None or str(folder) == "":
        return RuleSet()
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        raise RuleFileError(f"--rules {folder}: no such folder (it should hold any of "
                               f"{', '.join(n + '.yaml' for n in RULE_FILES)})")
    files, unknown = {}, []
    for file in sorted(path.iterdir()):
        if file.suffix not in (".yaml", ".yml") or not file.is_file():
            continue
        if file.stem not in RULE_FILES:
            unknown.append(file.name)
        elif file.stem in files:
            raise RuleFileError(f"--rules {folder}: both {files[file.stem].name} and {file.name}; keep one")
        else:
            files[file.stem] = file
    if unknown:
        raise RuleFileError(f"--rules {folder}: {', '.join(unknown)} is not a rule file this version reads; "
                               f"the names are {', '.join(n + '.yaml' for n in RULE_FILES)}")
    return RuleSet(folder=path, files=files)
