"""Closure of a group over the measured bins of a result file, at the group's replica sigma
(IBU's sigma): the figures tests/test_gauss_campaign.sh checks."""
import h5py
import numpy as np


def measured_pulls(path, group):
    """(mean pull^2, max |pull|, measured bins, mean, truth) of /groups/GROUP against
    /truth/hist over /measured."""
    f = h5py.File(path, "r")
    t, meas = f["truth/hist"][()], f["measured"][()].astype(bool)
    m, s = f["groups/%s/mean" % group][()], f["groups/%s/sigma" % group][()]
    pull = ((m - t) / s)[meas]
    return float(np.mean(pull ** 2)), float(np.abs(pull).max()), int(meas.sum()), m, t
