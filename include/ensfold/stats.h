/* Small statistics helpers shared by tests and the closure metrics. */
#ifndef ENSFOLD_STATS_H
#define ENSFOLD_STATS_H

/* Regularised upper incomplete gamma Q(a, x) = Gamma(a, x) / Gamma(a). */
double ef_gamma_q(double a, double x);
/* P(chi2_ndf >= chi2): the p-value of a chi-square statistic. */
double ef_chi2_sf(double chi2, double ndf);

#endif
