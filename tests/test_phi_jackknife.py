#!/usr/bin/python3
"""tools/marginal-closure's training share phi and its jackknife error, on simulated members.

usage: /usr/bin/python3 test_phi_jackknife.py        (ENSFOLD_SOURCE_ROOT from meson)

Campaigns of R = 20 replicas x M = 2 members over 40 bins are drawn with a known statistical and
training variance per bin (phi = 0.85, the share of gauss D = 3's gan-topo; bins correlated
within a replica and within a member, 0.5, as a smooth method's bins are). Over 400 such
campaigns: the pooled phi's mean is within 0.03 of the truth, and the jackknife standard error's
mean is within 25 % of phi's spread over the campaigns. A second set with phi = 0.5 checks the
same. Exits 1 on failure.
"""
import importlib.machinery
import importlib.util
import os
import sys

import numpy as np

src = os.environ.get("ENSFOLD_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), ".."))
loader = importlib.machinery.SourceFileLoader("mclosure", os.path.join(src, "tools",
                                                                        "marginal-closure"))
spec = importlib.util.spec_from_loader("mclosure", loader)
mc = importlib.util.module_from_spec(spec)
loader.exec_module(mc)


def campaign(rng, R, M, n, phi, rho):
    """Members (R, M, n): content 1000, replica variance 1000 per bin split by phi."""
    s2 = 1000.0  # the replica mean's variance: stat + train / M
    stat, train = np.sqrt((1 - phi) * s2), np.sqrt(phi * s2 * M)
    L = np.linalg.cholesky(rho * np.ones((n, n)) + (1 - rho) * np.eye(n))
    y = stat * rng.standard_normal((R, 1, n)) @ L.T
    t = train * rng.standard_normal((R, M, n)) @ L.T
    return 1000.0 + y + t


def check(phi, n_camp=400, R=20, M=2, n=40, rho=0.5):
    rng = np.random.default_rng(20261203)
    est = np.array([mc.jackknife_share(campaign(rng, R, M, n, phi, rho)) for _ in range(n_camp)])
    mean_phi, spread, mean_se = est[:, 0].mean(), est[:, 0].std(ddof=1), est[:, 1].mean()
    print("phi %.2f: estimate %.3f (mean of %d campaigns), spread %.3f, jackknife se %.3f "
          "(ratio %.2f)" % (phi, mean_phi, n_camp, spread, mean_se, mean_se / spread))
    ok = abs(mean_phi - phi) < 0.03 and abs(mean_se / spread - 1) < 0.25
    if not ok:
        print("FAIL: phi %.2f: the estimate or its jackknife error is off" % phi)
    return ok


def main():
    results = [check(0.85), check(0.5)]
    print("%d passed, %d failed" % (sum(results), len(results) - sum(results)))
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
