"""The front-desk patient card: who is calling?

When a patient phones, :func:`patient_card` shows their history and what the
analytics know about them on one card: visits and charges, segment, VIP status
with the reason, return probability and overdue score, upcoming appointments
and no-shows, consent per channel, the last campaigns and their outcomes, the
gestational week of an ongoing pregnancy and the children's next vaccinations.

- :mod:`~crm_analysis.profile.index`: :class:`PhoneIndex`, any spelling of a number → patients;
- :mod:`~crm_analysis.profile.context`: :class:`CardContext`, the analytics computed once per (clinic, as_of);
- :mod:`~crm_analysis.profile.card`: :class:`PatientCard` / :class:`PatientCards`, the result and its display;
- :mod:`~crm_analysis.profile.lookup`: :func:`patient_card`, the lookup itself;
- :mod:`~crm_analysis.profile.access_log`: :class:`AccessLog`, one line per lookup, never the phone number;
- :mod:`~crm_analysis.profile.lookup_cli`: the ``crm-analysis lookup`` command;
- :mod:`~crm_analysis.profile.card_index` / :mod:`~crm_analysis.profile.card_store`: the card index,
  every patient's card precomputed in one SQLite file, written by the monthly and daily runs and read
  by ``lookup`` with the standard library only.

Importing this package reads no file and fits nothing, and imports none of
its modules: each name below is loaded on first use (PEP 562), so reading the
card index never pays for the data stack.
"""

from crm_analysis.lazy_imports import lazy_exports

__all__ = ["patient_card", "card_context", "CardContext", "PatientCard", "PatientCards", "PhoneIndex", "phone_key",
           "AccessLog", "default_log_path", "PatientNotFoundError"]

#: Name → module of the names loaded on first use.
_LAZY = {"AccessLog": "access_log", "default_log_path": "access_log", "PatientCard": "card",
         "PatientCards": "card", "CardContext": "context", "PhoneIndex": "index", "phone_key": "index",
         "PatientNotFoundError": "lookup", "card_context": "lookup", "patient_card": "lookup"}


__getattr__, __dir__ = lazy_exports(__name__, {name: f"{__name__}.{module}" for name, module in _LAZY.items()},
                                    globals())
