"""Sanctions and ownership screening: official lists, name matching, ownership aggregation.

``lists`` reads the official lists (one parser per format: ``ofac``, ``un``, ``trade``; what they
make in ``entity``), ``names`` normalises names across scripts, ``match`` matches them against
the lists, ``ownership`` aggregates restricted ownership (OFAC 50 % rule), and ``cli`` is the
core of ``geowarden screen``; the ``screening`` signal (``geowarden.signals.screening``) turns
them into evidence for a signup. See docs/screening.md.
"""

from __future__ import annotations
