"""A realistic traffic simulator over real data, and the evaluation of the live decision path.

- ``simulate(scenario, events, seed, out, labels)``: API log events and labels (``scenario``);
- ``evaluate(logs, labels, policy, snapshot)``: per-persona recall / FPR / reasons (``eval``).

See docs/simulate.md.
"""

from __future__ import annotations

from geowarden.simulate.eval import evaluate
from geowarden.simulate.scenario import load_scenario, scenario_names, simulate

__all__ = ["evaluate", "load_scenario", "scenario_names", "simulate"]
