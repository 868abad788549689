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
- :mod:`~crm_analysis.profile.lookup_cli`: the ``crm-analysis lookup`` command.

Importing this package reads no file and fits nothing.
"""

from crm_analysis.profile.access_log import AccessLog, default_log_path
from crm_analysis.profile.card import PatientCard, PatientCards
from crm_analysis.profile.context import CardContext
from crm_analysis.profile.index import PhoneIndex, phone_key
from crm_analysis.profile.lookup import PatientNotFoundError, card_context, patient_card

__all__ = ["patient_card", "card_context", "CardContext", "PatientCard", "PatientCards", "PhoneIndex", "phone_key",
           "AccessLog", "default_log_path", "PatientNotFoundError"]
