"""A realistic traffic simulator over real data, and the evaluation of the live decision path.

- ``simulate(scenario, events, seed, out, labels, accounts=...)``: API log events, labels and
  the accounts table (``scenario``; personas in ``personas``, events in ``blocks``, time in
  ``timeline``, prompt fingerprints in ``prompts``, account identities in ``accounts``);
- ``evaluate(logs, labels, policy, snapshot)``: per-persona recall / FPR / reasons (``eval``).

See docs/simulate.md.
"""

from __future__ import annotations

from geowarden.simulate.eval import evaluate
from geowarden.simulate.scenario import load_scenario, scenario_names, simulate

__all__ = ["evaluate", "load_scenario", "scenario_names", "simulate"]
