"""The patient pseudonym rule, one for every way a patient id enters hipback.

A pseudonym is 1-64 ASCII letters, digits, ``-`` or ``_``, starting with a letter or digit, matched against
the whole string (``fullmatch``: "P-0042\\n" does not pass). A session config's ``patient``, ``hipback process
--patient`` and :meth:`hipback.ingest.store.LocalStore.open_session` all use it, so an id one of them takes
is taken by the others. No ``.`` or ``:``: a Grafana dashboard selects a patient by a regular expression
(``"patient" =~ /^$patient$/``), in which ``.`` would also match a different patient's id.

Reading is wider: InfluxDB tags written by an older hipback (which also took ``.`` and ``:``) still pass
:data:`hipback.ingest.influx.schema.ID_PATTERN`, so stored sessions of such ids can still be sent.
"""

from __future__ import annotations

import re

PSEUDONYM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

#: the rule in words, for error messages
PSEUDONYM_RULE = "1-64 letters, digits, '-' or '_', starting with a letter or digit (never a name)"


def is_pseudonym(value: object) -> bool:
    """True when ``value`` is a string that is a whole pseudonym."""
    return isinstance(value, str) and PSEUDONYM.fullmatch(value) is not None
