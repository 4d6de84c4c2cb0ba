// A sweep file and the grid it defines. A sweep = a base preset + overrides for every run
// ("set") + axes, each either one config path with its values or a named set of variants (each
// variant a bundle of config paths, e.g. a cell with its heads and eigenvalue range) + rules that
// drop ("exclude") or add ("include") grid cells. The grid is the product of the axes in file
// order. Every cell is resolved to a full run config and validated before anything runs, and is
// named by its config's hash, so a cell keeps its identity when other axes grow.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "lab/config.hpp"

namespace statelab {

struct SweepAxis {
  std::string name;  // a config path ("task.name") or the name of a variant axis ("cell")
  bool variants = false;
  // Path axes: the values. Variant axes: label -> {config path: value} objects.
  std::vector<nlohmann::json> values;
  std::vector<std::string> labels;  // the value's label: the variant's name, or the value itself
};

struct SweepSpec {
  std::string path;  // the sweep file
  std::string name;
  std::string base_path;  // the base preset, resolved against the sweep file's folder
  nlohmann::json base;    // the base preset's JSON with "set" applied
  std::vector<SweepAxis> axes;
  std::vector<nlohmann::json> exclude;  // objects: axis name -> label or value
  std::vector<nlohmann::json> include;  // objects: every axis name -> label or value
};

struct GridCell {
  int64_t index = 0;     // position in the grid (product order, then includes)
  nlohmann::json axes;   // axis name -> label (variant axes) or value (path axes)
  std::string label;     // "cell=slstm task.name=parity train.seed=1"
  RunConfig config;      // resolved and validated
  std::string id;        // config_hash(config)
  std::string dir_name;  // label made file-safe + "-" + the first 8 hex digits of id
};

// Parses and checks the sweep file: ConfigError naming the file, the JSON pointer, the value and
// what is allowed.
SweepSpec load_sweep(const std::string& path);

// Every cell of the grid, resolved and validated. ConfigError listing every cell whose config
// fails validation (an unknown config path, a value out of range), not just the first, and every
// exclude/include rule that names an unknown axis or a label the axis does not have.
std::vector<GridCell> expand_grid(const SweepSpec& spec);

// The label of one axis value: a string as is, anything else as compact JSON.
std::string axis_label(const nlohmann::json& value);

}  // namespace statelab
