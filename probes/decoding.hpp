// The maths behind the mechanism read-outs: a linear decoder of a task's latent state from a
// layer's hidden states, a 2-D PCA of states, and the scalar summaries logged per evaluation.
// Pure Eigen on plain float arrays, so each read-out can be checked on planted data without a
// model.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <vector>

namespace statelab {

// A linear probe: reads a categorical latent state (parity bit, count, value mod m) out of one
// hidden state. Fitted at training lengths and applied at every position of longer inputs, it
// shows where the internal state stops tracking the task.
//
// Fitting, in two stages on standardised features:
//  1. Ridge regression onto one-hot targets, (ZᵀZ + λnI)W = ZᵀY with the bias unpenalised,
//     solved in closed form. On its own this suffers from "masking": when three or more class
//     means lie along one direction (a count), the middle classes' indicators have nearly flat
//     fits and can never win the argmax, which is exactly the geometry a counter produces.
//  2. So it is refined by multinomial logistic regression with the same penalty (λn/2)‖W‖²,
//     started from the ridge solution. Instead of Newton steps, whose Hessian is
//     ((features+1)·classes)² entries, each step uses Böhning's fixed curvature bound
//     ½·ZᵀZ + λn (one factorisation; a plain step can never raise the penalised loss),
//     accelerated by Nesterov momentum that restarts when it points uphill. The penalty keeps
//     the optimum finite on separable data, and the weights kept are the lowest-loss ones
//     evaluated, so never worse in that loss than the ridge start. It stops when a plain step would
//     gain less than 1e-6 of the loss, or after 100 steps: one pass over the data each, ~0.1 s at
//     100k rows × 1024 features × 3 classes on one core, after ~2 s for ZᵀZ.
struct LatentDecoder {
  std::vector<int32_t> classes;  // the distinct latent values seen when fitting, ascending
  // Per-feature standardisation from the fitting data, z = (x − mean)·scale with scale = 1/std.
  // A feature whose std is below 1e-6 of its RMS (constant up to float round-off) gets scale 0:
  // it carried no information when fitting, and 1/std would turn round-off, or the drift it
  // shows at longer lengths, into huge inputs.
  Eigen::VectorXd mean, scale;
  Eigen::MatrixXd weights;    // [features + 1, classes]: logits of z; the last row is the bias
  double train_accuracy = 0;  // on the fitting data

  int64_t features() const { return mean.size(); }
  // Index into classes of the largest logit for one hidden state of `features()` floats (ties go
  // to the lower index).
  int64_t predict_index(const float* x) const;
  // The latent VALUE, classes[predict_index(x)]: a value not seen when fitting is never predicted.
  int32_t predict(const float* x) const;
};

// x: n rows of `features` floats (row-major); labels: n latent values, where entries < 0 mark
// rows to ignore (padding, positions without a defined state); those rows are never read.
// lambda: the ridge strength per row on standardised features.
LatentDecoder fit_latent_decoder(const float* x, const int32_t* labels, int64_t n, int64_t features,
                                 double lambda = 1e-3);

// Fraction of rows with a label >= 0 whose latent value the decoder predicts exactly; a value
// it never saw counts as wrong. NaN when no row has a label.
double decoder_accuracy(const LatentDecoder& decoder, const float* x, const int32_t* labels,
                        int64_t n);

// The two directions of largest variance of a set of states, for 2-D state-space plots.
struct Pca2 {
  Eigen::VectorXd mean;  // [features]
  // [features, 2], orthonormal columns, largest variance first; each column's largest-|.| entry
  // is positive (the first such entry on a tie) so that plots of reruns do not flip.
  Eigen::MatrixXd components;
  Eigen::Vector2d explained;  // fraction of the total variance per component; 0 if there is none
  // out2[0..1] = (x − mean)·components for one state of `features` floats.
  void project(const float* x, float* out2) const;
};

// n rows of `features` floats, row-major; n >= 2, features >= 1. With one feature the second
// component is zero.
Pca2 fit_pca2(const float* x, int64_t n, int64_t features);

// Summaries of probe series. Each returns NaN when it has no values to summarise; non-finite
// values stay in the denominator (a NaN gate is neither saturated nor negative), so a poisoned
// series shows up as a change rather than vanishing from the logs.

// Fraction of values within `margin` (0 <= margin < 0.5) of 0 or of 1: how often a sigmoid-like
// gate is saturated.
double saturated_fraction(const float* v, int64_t n, double margin = 0.05);
// Fraction of values < 0 (transition eigenvalues: negative ones are what lets a linear
// recurrence flip its state).
double negative_fraction(const float* v, int64_t n);
// Growth of a norm with position. values[sample, t] row-major (samples × T): the least-squares
// slope of log(mean over samples at t) against log(t+1), skipping t whose mean is <= 0 or not
// finite; NaN when fewer than 2 points remain. ~0: bounded memory; ~0.5: a random walk; ~1:
// linear growth (counting).
double growth_exponent(const float* values, int64_t samples, int64_t T);

}  // namespace statelab
