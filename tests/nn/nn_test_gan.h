/* A small GAN training loop shared by the nn tests (allocation, determinism,
 * 2D target): the reference step of `ensfold bench train-step` in miniature.
 * G: latent -> h -> h -> 2, D: 2 -> h -> h -> 1, LeakyReLU(0.2), BCE with
 * logits (real 1, fake 0) for D, non-saturating loss for G; real and fake
 * rows go through D as one batch. Header-only: each test links its own. */
#ifndef NN_TEST_GAN_H
#define NN_TEST_GAN_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/nn.h"
#include "ensfold/nn_adam.h"
#include "ensfold/nn_loss.h"
#include "ensfold/rng.h"

typedef struct {
  int B, latent, hidden;
  ef_mlp *g, *d;
  ef_adam *og, *od;
  ef_rng noise, data;
  float *mem;   /* one block for the buffers below */
  float *z;     /* (B, latent) */
  float *xin;   /* (2B, 2): real rows then fake rows */
  float *dl;    /* (2B) */
  float *dxd;   /* (B, 2) */
  float loss_d, loss_g;
} tgan;

/* ring of radius 1, radial width 0.05 */
static void tgan_ring(ef_rng *r, float *x, int n) {
  for (int i = 0; i < n; i++) {
    double phi = 6.283185307179586 * ef_rng_uniform(r), rad = 1.0 + 0.05 * ef_rng_normal(r);
    x[2 * i] = (float)(rad * cos(phi));
    x[2 * i + 1] = (float)(rad * sin(phi));
  }
}

static int tgan_create(ef_ctx *ctx, tgan *t, int B, int latent, int hidden, uint64_t seed,
                       float lr) {
  memset(t, 0, sizeof *t);
  t->B = B;
  t->latent = latent;
  t->hidden = hidden;
  const int wg[4] = {latent, hidden, hidden, 2}, wd[4] = {2, hidden, hidden, 1};
  const ef_nn_act acts[3] = {EF_ACT_LEAKY_RELU, EF_ACT_LEAKY_RELU, EF_ACT_LINEAR};
  ef_mlp_spec sg = {3, wg, acts, 0.2f, B}, sd = {3, wd, acts, 0.2f, 2 * B};
  ef_adam_cfg ac = ef_adam_defaults();
  ac.lr = lr;
  ac.beta1 = 0.5f;
  EF_CHECK(ef_mlp_create(ctx, &t->g, &sg));
  EF_CHECK(ef_mlp_create(ctx, &t->d, &sd));
  ef_mlp_init(t->g, seed, 0);
  ef_mlp_init(t->d, seed, 1);
  EF_CHECK(ef_adam_create(ctx, &t->og, ef_mlp_n_params(t->g), &ac));
  EF_CHECK(ef_adam_create(ctx, &t->od, ef_mlp_n_params(t->d), &ac));
  size_t n = (size_t)B * latent + 4 * (size_t)B + 2 * (size_t)B + 2 * (size_t)B;
  t->mem = malloc(n * sizeof(float));
  if (!t->mem) return EF_ERR_NOMEM;
  t->z = t->mem;
  t->xin = t->z + (size_t)B * latent;
  t->dl = t->xin + 4 * (size_t)B;
  t->dxd = t->dl + 2 * (size_t)B;
  ef_rng_init(&t->noise, seed, EF_RNG_NN_TRAIN, 0);
  ef_rng_init(&t->data, seed, EF_RNG_NN_TRAIN, 1);
  return EF_OK;
}

static void tgan_destroy(tgan *t) {
  ef_mlp_destroy(t->g);
  ef_mlp_destroy(t->d);
  ef_adam_destroy(t->og);
  ef_adam_destroy(t->od);
  free(t->mem);
}

/* G(z) for B fresh latent vectors; returns (B, 2) inside G */
static const float *tgan_sample(tgan *t) {
  ef_nn_fill_normal(&t->noise, t->z, (size_t)t->B * t->latent);
  return ef_mlp_forward(t->g, t->z, t->B);
}

static void tgan_step(tgan *t) {
  const int B = t->B;
  tgan_ring(&t->data, t->xin, B);
  memcpy(t->xin + 2 * B, tgan_sample(t), 2 * (size_t)B * sizeof(float));
  const float *logit = ef_mlp_forward(t->d, t->xin, 2 * B);
  t->loss_d = ef_loss_bce_logits(B, logit, NULL, 1.0f, NULL, t->dl) +
              ef_loss_bce_logits(B, logit + B, NULL, 0.0f, NULL, t->dl + B);
  ef_mlp_backward(t->d, t->dl, NULL, EF_MLP_GRAD_PARAMS);
  ef_adam_step(t->od, ef_mlp_params(t->d), ef_mlp_grads(t->d));
  logit = ef_mlp_forward(t->d, t->xin + 2 * B, B);
  t->loss_g = ef_loss_gen_nonsat(B, logit, NULL, t->dl);
  ef_mlp_backward(t->d, t->dl, t->dxd, 0);
  ef_mlp_backward(t->g, t->dxd, NULL, EF_MLP_GRAD_PARAMS);
  ef_adam_step(t->og, ef_mlp_params(t->g), ef_mlp_grads(t->g));
}

#endif
