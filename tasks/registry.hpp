// The task registry: name -> generator. Later task families join here.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tasks/task.hpp"

namespace statelab {

std::vector<std::string> task_names();
// Throws ConfigError naming the unknown task and listing the known ones.
std::unique_ptr<Task> make_task(const std::string& name);

}  // namespace statelab
