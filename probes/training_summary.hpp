// The probe figures logged to metrics.jsonl at every held-out check of a run in training: gate
// saturation, memory norms and their growth with position, the share of negative transition
// eigenvalues. A CPU copy of the model (the parameters copied over at each call) probes a fixed
// held-out batch, so training's own activations and device are never touched.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>

#include "lab/trainer.hpp"

namespace statelab {

// Probes `samples` held-out sequences of the longest eval length, capped at `max_length` (the
// eval set of that length: the same sequences every call). Returns ProbeSummary::key_figures().
std::function<nlohmann::json(int)> make_training_summarizer(Trainer& trainer, int samples = 8,
                                                            int max_length = 256);

}  // namespace statelab
