// Permutation word problems: elements enumerated with std::next_permutation (lexicographic), the
// product table built once per task, tokens drawn uniformly as in Merrill et al.'s
// generate_data.py (random.choices over the elements, scanned product as the target). Their
// composition order (abstract_algebra's Perm product) was not checked; ours is documented in
// the header and the tests recompute it from explicit arrays.
#include "tasks/permutation.hpp"

#include <algorithm>
#include <map>

#include "kernels/error.hpp"

namespace statelab {

namespace {

bool is_even(const std::vector<int>& p) {
  int inversions = 0;
  for (size_t i = 0; i < p.size(); ++i)
    for (size_t j = i + 1; j < p.size(); ++j) inversions += p[i] > p[j];
  return inversions % 2 == 0;
}

std::string one_line(const std::vector<int>& p) {
  std::string s;
  for (int v : p) s += char('0' + v);
  return s;
}

}  // namespace

PermutationGroupTask::PermutationGroupTask(int degree, bool even_only)
    : name_(std::string(even_only ? "a" : "s") + std::to_string(degree)),
      degree_(degree),
      even_only_(even_only) {
  // 3..6 keeps the product table small (720^2 entries at most) and names one digit per point.
  if (degree < 3 || degree > 6)
    throw ConfigError("permutation word problem: degree " + std::to_string(degree) +
                      " is not supported; allowed: 3 to 6");
  std::vector<int> p(static_cast<size_t>(degree));
  for (int i = 0; i < degree; ++i) p[size_t(i)] = i;
  do {
    if (!even_only || is_even(p)) elements_.push_back(p);
  } while (std::next_permutation(p.begin(), p.end()));

  std::map<std::vector<int>, int32_t> index;
  for (size_t k = 0; k < elements_.size(); ++k) index[elements_[k]] = int32_t(k);
  const size_t n = elements_.size();
  product_.resize(n * n);
  std::vector<int> ab(static_cast<size_t>(degree));
  for (size_t a = 0; a < n; ++a)
    for (size_t b = 0; b < n; ++b) {
      for (int i = 0; i < degree; ++i)  // a first, then b
        ab[size_t(i)] = elements_[b][size_t(elements_[a][size_t(i)])];
      const auto it = index.find(ab);
      SL_CHECK(it != index.end(), name_ + ": the product of two elements left the group");
      product_[a * n + b] = it->second;
    }

  vocab_.names.push_back("<pad>");
  for (const auto& e : elements_) vocab_.names.push_back(one_line(e));
}

std::string PermutationGroupTask::definition() const {
  return "elements g1..gL of " + std::string(even_only_ ? "A" : "S") + std::to_string(degree_) +
         " (one-line notation, e.g. " + vocab_.names[2] +
         ") drawn uniformly; answer at gt: the product g1*g2*...*gt (g1 applied first), as "
         "its element token";
}

std::string PermutationGroupTask::latent_definition() const {
  return "index of the running product g1*...*gt among the " + std::to_string(order()) +
         " elements in lexicographic order of one-line notation (0 = identity)";
}

std::vector<int32_t> PermutationGroupTask::answer_tokens() const {
  std::vector<int32_t> ids(elements_.size());
  for (size_t k = 0; k < ids.size(); ++k) ids[k] = int32_t(k + 1);
  return ids;
}

void PermutationGroupTask::generate(Rng& rng, int length, int32_t* tokens) const {
  for (int t = 0; t < length; ++t) tokens[t] = int32_t(rng.uniform_int(1, order()));
}

void PermutationGroupTask::label(const int32_t* tokens, int length, int32_t* answers,
                                 int32_t* latent) const {
  const int32_t n = order();
  int32_t state = 0;  // identity
  for (int t = 0; t < length; ++t) {
    if (tokens[t] < 1 || tokens[t] > n)
      reject_token(tokens, t,
                   "one of the " + std::to_string(n) + " elements of " + name_ +
                       " in one-line notation (" + vocab_.names[1] + " ... " +
                       vocab_.names[size_t(n)] + ")");
    state = product_[size_t(state) * size_t(n) + size_t(tokens[t] - 1)];
    latent[t] = state;
    answers[t] = state + 1;
  }
}

std::unique_ptr<Task> make_s3_task() { return std::make_unique<PermutationGroupTask>(3, false); }
std::unique_ptr<Task> make_s5_task() { return std::make_unique<PermutationGroupTask>(5, false); }
std::unique_ptr<Task> make_a5_task() { return std::make_unique<PermutationGroupTask>(5, true); }

}  // namespace statelab
