// What the dashboard asks of the training worker. Widgets only push these; the worker drains
// them between steps (or while idle), so no draw call ever waits on training.
#pragma once

#include <string>

#include "lab/config.hpp"

namespace statelab::gui {

struct Command {
  enum class Kind {
    start,  // config: a new run into runs/; a stopped run continues instead
    pause,
    resume,
    step,           // one training step, then pause again
    stop,           // stop resumably (checkpoint written)
    reset,          // stop, then forget the run
    eval,           // a quick eval and probe of the current parameters now
    probe,          // probe `text` (typed tokens) or held-out row `sample` of length `length`
    checkpoint,     // write a checkpoint now
    export_traces,  // path: the directory for traces of the probe set
    export_config,  // path: the resolved config as JSON
    open_run,       // path: a finished run directory to view
    add_overlay,    // path: a run directory (its eval.json) or a sweep directory (results)
    clear_overlays,
    compare,  // path: a second run, probed on the same input for Memory
    quit,     // leave; `save` chooses whether a training run checkpoints first
  };
  Kind kind = Kind::pause;
  RunConfig config;
  std::string path, text;
  int sample = 0, length = 0;
  bool save = true;
};

}  // namespace statelab::gui
