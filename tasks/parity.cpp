// Parity generator: uniform random bits; the answer token is the bit token of (#1s mod 2).
#include "tasks/parity.hpp"

namespace statelab {

ParityTask::ParityTask() : vocab_{{"<pad>", "0", "1"}} {}

std::string ParityTask::definition() const {
  return "bits b1..bL uniform; answer at the last bit: (b1 + ... + bL) mod 2; "
         "latent state: the parity of the prefix";
}

void ParityTask::sample_sequence(Rng& rng, int length, int32_t* tokens, int32_t* targets,
                                 int32_t* latent) const {
  int parity = 0;
  for (int t = 0; t < length; ++t) {
    const int bit = int(rng.next_u32() & 1u);
    parity ^= bit;
    tokens[t] = bit ? kOne : kZero;
    latent[t] = parity;
  }
  targets[length - 1] = parity ? kOne : kZero;
}

}  // namespace statelab
