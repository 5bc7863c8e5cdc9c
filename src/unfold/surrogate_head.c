/* The smearing networks' residual head (surrogate_impl.h): how a network's
 * outputs become a residual, and back.
 *
 * Adversarial and energy losses: the network draws the residual itself from
 * its noise inputs; the head copies its D outputs (in units of the residual
 * scale sig) and passes the gradient straight back.
 *
 * Mixture (gan.smearing.loss: mixture): per observable the network gives
 * the M-component Gaussian mixture of the residual / sig at v, P = 3 M
 * outputs (logits a_k, means mu_k, log widths l_k; no noise inputs, they
 * are 0), trained by the MC's likelihood. A residual is drawn by picking a
 * component and a normal; its gradient wrt the outputs is the implicit
 * reparameterisation dr/dtheta = -(dF/dtheta) / p(r), F the mixture's CDF
 * and p its density at the drawn r (Figurnov, Mohamed and Mnih, "Implicit
 * reparameterization gradients", NeurIPS 2018): exact for any way r is
 * drawn, so the component's pick needs no gradient of its own. */
#include <math.h>
#include <string.h>

#include "ensfold/nn_loss.h"
#include "surrogate_impl.h"

#define LW_MIN -7.0 /* log width bounds, units of sig: a width of 0.001 .. 20 */
#define LW_MAX 3.0

int sg_head_width(const ef_surrogate_params *sp) {
  return sp->loss == EF_SMEAR_MIXTURE ? 3 * sp->components : 1;
}

void sg_noise(const ef_surrogate *s, ef_rng *r, float *x, int k) {
  if (s->p.loss == EF_SMEAR_MIXTURE) memset(x, 0, (size_t)k * sizeof(float));
  else ef_nn_fill_normal(r, x, (size_t)k);
}

/* One observable's mixture from its P outputs o: weights pi, means mu,
 * widths w (M each); returns 1 where the log width is inside its bounds
 * for component k in the bit k of *inside. */
static void mixture(const float *o, int M, double *pi, double *mu, double *w, unsigned *inside) {
  double amax = o[0], sum = 0.0;
  for (int k = 1; k < M; k++) amax = fmax(amax, o[k]);
  *inside = 0;
  for (int k = 0; k < M; k++) {
    sum += pi[k] = exp(o[k] - amax);
    mu[k] = o[M + k];
    double l = o[2 * M + k];
    if (l > LW_MIN && l < LW_MAX) *inside |= 1u << k;
    w[k] = exp(fmin(LW_MAX, fmax(LW_MIN, l)));
  }
  for (int k = 0; k < M; k++) pi[k] /= sum;
}

static double phi(double z) { return exp(-0.5 * z * z) * 0.3989422804014327; }

/* Draw one residual from the mixture at o; its gradient wrt the P outputs
 * into jac. */
static float mixture_draw(const float *o, int M, ef_rng *r, float *jac) {
  double pi[EF_SMEAR_MAX_COMP], mu[EF_SMEAR_MAX_COMP], w[EF_SMEAR_MAX_COMP];
  unsigned inside;
  mixture(o, M, pi, mu, w, &inside);
  double u = ef_rng_uniform(r), c = 0.0;
  int k = 0;
  while (k < M - 1 && (c += pi[k]) <= u) k++;
  double x = mu[k] + w[k] * ef_rng_normal(r), F = 0.0, p = 0.0;
  double z[EF_SMEAR_MAX_COMP], cdf[EF_SMEAR_MAX_COMP], pdf[EF_SMEAR_MAX_COMP];
  for (int j = 0; j < M; j++) {
    z[j] = (x - mu[j]) / w[j];
    cdf[j] = 0.5 * erfc(-z[j] / sqrt(2.0));
    pdf[j] = phi(z[j]);
    F += pi[j] * cdf[j];
    p += pi[j] * pdf[j] / w[j];
  }
  p = fmax(p, 1e-300);
  for (int j = 0; j < M; j++) {
    jac[j] = (float)(-pi[j] * (cdf[j] - F) / p);
    jac[M + j] = (float)(pi[j] * pdf[j] / w[j] / p);
    jac[2 * M + j] = (inside >> j & 1u) ? (float)(pi[j] * pdf[j] * z[j] / p) : 0.0f;
  }
  return (float)x;
}

void sg_head_forward(ef_surrogate *s, const float *o, int W, int c, int n, int slot, ef_rng *r,
                     float *res) {
  const int D = s->D, P = s->P, M = s->p.components;
  for (int i = 0; i < n; i++)
    for (int d = 0; d < D; d++) {
      const float *oi = o + (size_t)W * i + c + (size_t)P * d;
      if (P == 1) res[(size_t)D * i + d] = *oi;
      else
        res[(size_t)D * i + d] =
            mixture_draw(oi, M, r, s->jac + (((size_t)slot * s->rows + i) * D + d) * P);
    }
}

void sg_head_backward(const ef_surrogate *s, const float *g, int n, int slot, float *dout, int W,
                      int c) {
  const int D = s->D, P = s->P;
  for (int i = 0; i < n; i++)
    for (int d = 0; d < D; d++) {
      float gi = g[(size_t)D * i + d], *od = dout + (size_t)W * i + c + (size_t)P * d;
      if (P == 1) {
        *od += gi;
        continue;
      }
      const float *jac = s->jac + (((size_t)slot * s->rows + i) * D + d) * P;
      for (int k = 0; k < P; k++) od[k] += gi * jac[k];
    }
}

/* Minus the log-likelihood of y (units of sig) under the mixture at o; its
 * gradient wrt the P outputs, times scale, into dout. */
static double mixture_nll(const float *o, int M, double y, double scale, float *dout) {
  double pi[EF_SMEAR_MAX_COMP], mu[EF_SMEAR_MAX_COMP], w[EF_SMEAR_MAX_COMP];
  double l[EF_SMEAR_MAX_COMP], z[EF_SMEAR_MAX_COMP], lmax = -INFINITY, sum = 0.0;
  unsigned inside;
  mixture(o, M, pi, mu, w, &inside);
  for (int k = 0; k < M; k++) {
    z[k] = (y - mu[k]) / w[k];
    l[k] = log(fmax(pi[k], 1e-300)) - 0.5 * z[k] * z[k] - log(w[k]);
    lmax = fmax(lmax, l[k]);
  }
  for (int k = 0; k < M; k++) sum += exp(l[k] - lmax);
  double lse = lmax + log(sum);
  for (int k = 0; k < M; k++) {
    double gam = exp(l[k] - lse); /* the component's responsibility */
    dout[k] += (float)(scale * (pi[k] - gam));
    dout[M + k] += (float)(scale * -gam * z[k] / w[k]);
    if (inside >> k & 1u) dout[2 * M + k] += (float)(scale * -gam * (z[k] * z[k] - 1.0));
  }
  return 0.5 * log(2.0 * M_PI) - lse;
}

int sg_head_nll(ef_ctx *ctx, ef_surrogate *s, const ef_events *mc, const sg_cgan *g,
                const float *o, int m, int step) {
  const int D = s->D, P = s->P, M = s->p.components, outw = g->outw;
  double loss = 0.0, scale = 1.0 / m;
  for (int j = 0; j < m; j++) {
    int i = s->arow[j];
    size_t e = (size_t)s->idx[i];
    int q = sg_residual_block(mc, g, e);
    const unsigned char *lost = s->lost + D * ef_space_seen_index(&mc->space, mc->topology[e]);
    double y[EF_SPACE_MAX_DIM];
    sg_residual(s, mc, e, y);
    for (int d = 0; d < D; d++) {
      if (lost[d]) continue;
      size_t at = (size_t)i * outw + (size_t)P * (q * D + d);
      loss += mixture_nll(o + at, M, y[d] / g->sig[D * q + d], scale, s->dout + at) * scale;
    }
  }
  return ef_loss_check(ctx, loss, g->what, step);
}
