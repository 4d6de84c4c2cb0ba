// Parity generator: uniform random bits; the answer token is the bit token of (#1s mod 2).
#include "tasks/parity.hpp"

namespace statelab {

ParityTask::ParityTask() : vocab_{{"<pad>", "0", "1"}} {}

std::string ParityTask::definition() const {
  return "bits b1..bL uniform; answer at bL: (b1 + ... + bL) mod 2, as the bit token 0 or 1";
}

void ParityTask::generate(Rng& rng, int length, int32_t* tokens) const {
  for (int t = 0; t < length; ++t) tokens[t] = (rng.next_u32() & 1u) ? kOne : kZero;
}

void ParityTask::label(const int32_t* tokens, int length, int32_t* answers,
                       int32_t* latent) const {
  int parity = 0;
  for (int t = 0; t < length; ++t) {
    if (tokens[t] != kZero && tokens[t] != kOne) reject_token(tokens, t, "a bit 0 or 1");
    parity ^= tokens[t] == kOne;
    latent[t] = parity;
    answers[t] = parity ? kOne : kZero;
  }
}

}  // namespace statelab
