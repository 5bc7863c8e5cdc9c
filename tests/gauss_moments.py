"""Mean and width of a 1-D histogram from its bin centres: the Gaussian
example's figures (tests/test_gauss_campaign.sh, tests/test_omnifold_campaign.sh)."""
import numpy as np


def moments(h, edges):
    """(mean, standard deviation) of the histogram h over the bins edges."""
    c = 0.5 * (edges[1:] + edges[:-1])
    m = (h * c).sum() / h.sum()
    return m, np.sqrt((h * (c - m) ** 2).sum() / h.sum())
