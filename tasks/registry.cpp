// Task registry: the one place that maps task names to generators.
#include "tasks/registry.hpp"

#include <functional>
#include <map>

#include "kernels/error.hpp"
#include "tasks/parity.hpp"

namespace statelab {

namespace {
const std::map<std::string, std::function<std::unique_ptr<Task>()>>& factories() {
  static const std::map<std::string, std::function<std::unique_ptr<Task>()>> f = {
      {"parity", [] { return std::make_unique<ParityTask>(); }},
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
