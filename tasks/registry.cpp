// Task registry: the one place that maps task names to generators.
#include "tasks/registry.hpp"

#include <functional>
#include <map>

#include "kernels/error.hpp"
#include "tasks/arithmetic_brackets.hpp"
#include "tasks/counting.hpp"
#include "tasks/flip_flop.hpp"
#include "tasks/parity.hpp"
#include "tasks/permutation.hpp"
#include "tasks/regular.hpp"

namespace statelab {

namespace {
const std::map<std::string, std::function<std::unique_ptr<Task>()>>& factories() {
  static const std::map<std::string, std::function<std::unique_ptr<Task>()>> f = {
      {"parity", [] { return std::make_unique<ParityTask>(); }},
      {"even_pairs", make_even_pairs_task},
      {"cycle_navigation", make_cycle_navigation_task},
      {"modular_arithmetic", make_modular_arithmetic_task},
      {"modular_arithmetic_brackets", make_modular_arithmetic_brackets_task},
      {"s3", make_s3_task},
      {"s5", make_s5_task},
      {"a5", make_a5_task},
      {"majority", make_majority_task},
      {"count_equality", make_count_equality_task},
      {"anbn", make_anbn_task},
      {"count_mod3", make_count_mod3_task},
      {"flip_flop", make_flip_flop_task},
  };
  return f;
}
}  // namespace

std::vector<std::string> task_names() {
  std::vector<std::string> names;
  for (const auto& [name, _] : factories()) names.push_back(name);
  return names;
}

std::unique_ptr<Task> make_task(const std::string& name) {
  const auto it = factories().find(name);
  if (it != factories().end()) return it->second();
  std::string known;
  for (const auto& n : task_names()) known += (known.empty() ? "" : ", ") + n;
  throw ConfigError("unknown task '" + name + "'; known tasks: " + known);
}

}  // namespace statelab
