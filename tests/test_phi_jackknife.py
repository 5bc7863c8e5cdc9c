#!/usr/bin/python3
"""tools/marginal-closure's training share phi and its jackknife error, on simulated members.

usage: /usr/bin/python3 test_phi_jackknife.py        (ENSFOLD_SOURCE_ROOT from meson)

Campaigns of R = 20 replicas x M = 2 members over 40 bins are drawn with a known statistical and
training variance per bin (phi = 0.85, the share of gauss D = 3's gan-topo; bins correlated
within a replica and within a member, 0.5, as a smooth method's bins are). Over 400 such
campaigns: the pooled phi's mean is within 0.03 of the truth, and the jackknife standard error's
mean is within 25 % of phi's spread over the campaigns. A second set with phi = 0.5 checks the
same.

A projection has a training share of its own: campaigns of 4 marginal bins of 10 product bins
each, whose training noise moves events between the product bins of a marginal bin (it sums to 0
there, as G's noise that shifts events between neighbours) and whose statistics are independent
per product bin, phi 0.85 per product bin. The marginal bins' exact share follows from the two
parts; projected_share must find it (mean over 400 campaigns within 0.03) where the product bins'
phi (0.85) is far from it. Exits 1 on failure.
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


def projection_campaign(rng, R, M, G, per, phi, keep):
    """Members (R, M, G per): training noise of variance phi s2 M per product bin of which only
    the share keep survives a marginal bin's sum; statistics (1 - phi) s2, independent."""
    s2, n = 1000.0, G * per
    stat = np.sqrt((1 - phi) * s2) * rng.standard_normal((R, 1, n))
    t = rng.standard_normal((R, M, G, per))
    t = t - (1 - np.sqrt(keep)) * t.mean(axis=3, keepdims=True)  # sum kept: sqrt(keep) of it
    t *= np.sqrt(phi * s2 * M / (1 - (1 - keep) / per))  # variance phi s2 M per product bin
    return 1000.0 + stat + t.reshape(R, M, n)


def check_projection(phi=0.85, keep=0.05, n_camp=400, R=20, M=2, G=4, per=10):
    """projected_share on marginal bins whose training noise mostly cancels in the sum."""
    rng = np.random.default_rng(20261208)
    P = np.kron(np.eye(G), np.ones((1, per)))  # (G, G per): the marginal bins
    # per marginal bin: statistics per (1 - phi) s2, training phi s2 M keep per / M (mean)
    stat, train = per * (1 - phi), per * phi * keep / (1 - (1 - keep) / per)
    exact = train / (stat + train)
    est, prod = [], []
    for _ in range(n_camp):
        Y = projection_campaign(rng, R, M, G, per, phi, keep)
        est.append(mc.projected_share(Y, P)[0])
        prod.append(mc.training_share(Y))
    est, prod = np.mean(est), np.mean(prod)
    print("projection: product bins' phi %.3f (set %.2f), marginal bins' exact %.3f, "
          "projected_share %.3f (mean of %d campaigns)" % (prod, phi, exact, est, n_camp))
    ok = abs(est - exact) < 0.03 and abs(prod - phi) < 0.03 and abs(prod - exact) > 0.3
    if not ok:
        print("FAIL: the projection's training share is off")
    return ok


def main():
    results = [check(0.85), check(0.5), check_projection()]
    print("%d passed, %d failed" % (sum(results), len(results) - sum(results)))
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
