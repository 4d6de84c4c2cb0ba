// The model-level series of a probe pass, around the blocks' own.
#include "probes/probe_pass.hpp"

#include <cmath>

#include "kernels/error.hpp"

namespace statelab {

ProbeSink probe_batch(Model<float>& model, const Batch& batch, int64_t attention_map_max_length) {
  SL_CHECK(batch.batch >= 1 && batch.length >= 1, "probe_batch: empty batch");
  for (int32_t n : batch.lengths)
    SL_CHECK(n == batch.length, "probe_batch: rows of unequal length");
  const Pass p{batch.batch, batch.length, nullptr};
  model.forward(batch.tokens.data(), p);
  model.download_activations();
  ProbeSink sink(attention_map_max_length);
  const std::vector<std::string> axes = {"sample", "time"};
  const std::vector<int64_t> shape = {p.B, p.T};
  auto labels = [&](const char* name, const std::vector<int32_t>& v, const char* meaning) {
    float* out = sink.add(name, axes, shape, ProbeKind::label, meaning);
    for (size_t i = 0; i < v.size(); ++i) out[i] = float(v[i]);
  };
  labels("tokens", batch.tokens, "input token id (the manifest's vocab names them)");
  labels("latent", batch.latent, "the task's latent state after the token (-1: undefined)");
  labels("target", batch.targets, "answer token id where the readout scores (-1: not scored)");

  // Answers over the whole vocabulary, as the loss and accuracy read them.
  const int V = model.vocab();
  const float* logits = model.host_logits();
  float* answer = sink.add("answer", axes, shape, ProbeKind::label,
                           "the model's answer token id (argmax of the logits)");
  float* confidence = sink.add("confidence", axes, shape, ProbeKind::value,
                               "softmax probability of the model's answer");
  for (int64_t n = 0; n < p.tokens(); ++n) {
    const float* row = logits + n * V;
    int best = 0;
    for (int v = 1; v < V; ++v)
      if (row[v] > row[best]) best = v;
    double total = 0;
    for (int v = 0; v < V; ++v) total += std::exp(double(row[v]) - double(row[best]));
    answer[n] = float(best);
    confidence[n] = float(1.0 / total);
  }

  const int64_t L = model.n_blocks() + 1, D = model.config().d_model;
  float* norms =
      sink.add("residual_norm", {"sample", "time", "layer"}, {p.B, p.T, L}, ProbeKind::norm,
               "L2 norm of the residual stream: layer 0 the embedding, layer i the "
               "output of block i-1");
  for (int64_t l = 0; l < L; ++l) {
    const float* x = model.host_residual(int(l));
    for (int64_t n = 0; n < p.tokens(); ++n) {
      double sum = 0;
      for (int64_t d = 0; d < D; ++d) sum += double(x[n * D + d]) * double(x[n * D + d]);
      norms[n * L + l] = float(std::sqrt(sum));
    }
  }
  model.probe(sink);
  return sink;
}

}  // namespace statelab
