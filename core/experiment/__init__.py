"""``hemarelay experiment``: the paper's single-site vs multi-site comparison.

SSL on each site, MSL through the real ring (one process per site), all from
one seed; evaluation of every model on every site's test and normal scans;
Table 2, Wilcoxon tests, Figures 3-5 and an HTML report. See :mod:`.run`.
"""

from .plan import ExperimentPlan, SiteSpec, parse_site_arg, ring_budget
from .run import ExperimentResult, run_experiment

__all__ = ["ExperimentPlan", "ExperimentResult", "SiteSpec", "parse_site_arg", "ring_budget", "run_experiment"]
