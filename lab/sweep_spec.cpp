// Sweep files: strict parsing, grid expansion and validation of every cell.
#include "lab/sweep_spec.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>

#include "kernels/error.hpp"
#include "lab/files.hpp"

namespace statelab {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& file, const std::string& pointer,
                       const std::string& expected, const json& got) {
  throw ConfigError(file + ": " + (pointer.empty() ? "/" : pointer) + ": expected " + expected +
                    ", got " + (got.is_null() ? std::string("nothing") : got.dump()));
}

template <typename Json = json>
Json parse_json_file(const std::string& path, const std::string& what) {
  const std::string text = read_file(path);
  try {
    return Json::parse(text);
  } catch (const json::parse_error& e) {
    throw ConfigError(path + ": " + what + " is not valid JSON: " + e.what());
  }
}

// A non-empty dotted path of config names, as --set takes it.
bool is_config_path(const std::string& s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.')) return false;
  return s.find("..") == std::string::npos;
}

void apply(json& j, const std::string& path, const json& value, const std::string& source) {
  apply_override(j, path + "=" + value.dump(), source);
}

// `ordered`: the same axis read with its keys in file order, which is the order of a variant
// axis's values in the grid (json keeps keys sorted).
SweepAxis parse_axis(const json& a, const nlohmann::ordered_json& ordered, const std::string& file,
                     const std::string& at) {
  if (!a.is_object()) fail(file, at, "an axis object {\"path\": ..., \"values\": [...]}", a);
  for (const auto& [key, value] : a.items())
    if (key != "path" && key != "name" && key != "values")
      fail(file, at + "/" + key, "no such key (an axis has \"path\" or \"name\", and \"values\")",
           value);
  SweepAxis axis;
  const json values = a.value("values", json());
  if (a.contains("path") == a.contains("name"))
    fail(file, at, "exactly one of \"path\" (a config path) or \"name\" (a variant axis)", a);
  if (a.contains("path")) {
    const json& p = a["path"];
    if (!p.is_string() || !is_config_path(p.get<std::string>()))
      fail(file, at + "/path", "a dotted config path such as \"task.name\"", p);
    axis.name = p.get<std::string>();
    if (!values.is_array() || values.empty())
      fail(file, at + "/values", "a non-empty array of values for " + axis.name, values);
    for (const auto& v : values) {
      axis.values.push_back(v);
      axis.labels.push_back(axis_label(v));
    }
  } else {
    const json& n = a["name"];
    if (!n.is_string() || !is_config_path(n.get<std::string>()) ||
        n.get<std::string>().find('.') != std::string::npos)
      fail(file, at + "/name", "a name without dots for a variant axis, such as \"cell\"", n);
    axis.name = n.get<std::string>();
    axis.variants = true;
    if (!values.is_object() || values.empty())
      fail(file, at + "/values",
           "an object of named variants {\"label\": {\"config.path\": value}}", values);
    for (const auto& item : ordered.at("values").items()) {
      const std::string& label = item.key();
      const json& bundle = values.at(label);
      const std::string vat = at + "/values/" + label;
      if (!bundle.is_object()) fail(file, vat, "an object of config paths and values", bundle);
      for (const auto& [path, v] : bundle.items())
        if (!is_config_path(path)) fail(file, vat + "/" + path, "a dotted config path", v);
      axis.values.push_back(bundle);
      axis.labels.push_back(label);
    }
  }
  return axis;
}

std::vector<json> parse_rules(const json& j, const std::string& key, const std::string& file) {
  std::vector<json> rules;
  if (!j.contains(key)) return rules;
  const json& list = j[key];
  if (!list.is_array()) fail(file, "/" + key, "an array of {\"axis\": value} objects", list);
  for (size_t i = 0; i < list.size(); ++i) {
    if (!list[i].is_object() || list[i].empty())
      fail(file, "/" + key + "/" + std::to_string(i), "a non-empty {\"axis\": value} object",
           list[i]);
    rules.push_back(list[i]);
  }
  return rules;
}

const SweepAxis* find_axis(const SweepSpec& spec, const std::string& name) {
  for (const auto& a : spec.axes)
    if (a.name == name) return &a;
  return nullptr;
}

// Whether a rule's value for an axis selects the given choice (its index on that axis).
bool selects(const SweepAxis& axis, size_t choice, const json& wanted) {
  if (axis.variants) return wanted.is_string() && wanted.get<std::string>() == axis.labels[choice];
  return wanted == axis.values[choice] || axis_label(wanted) == axis.labels[choice];
}

// Every problem at once, one per line: a sweep is fixed in one edit, not one error at a time.
[[noreturn]] void reject(const std::string& head, const std::vector<std::string>& problems) {
  std::string all = head;
  for (const auto& p : problems) all += "\n  " + p;
  throw ConfigError(all);
}

std::string file_safe(const std::string& label) {
  std::string out;
  for (char c : label) {
    const bool keep =
        std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    out += keep ? c : (c == '=' ? '-' : '_');
  }
  if (out.size() > 80) out.resize(80);
  return out;
}

}  // namespace

std::string axis_label(const json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

SweepSpec load_sweep(const std::string& path) {
  SweepSpec spec;
  spec.path = path;
  const json j = parse_json_file(path, "the sweep file");
  const auto ordered = parse_json_file<nlohmann::ordered_json>(path, "the sweep file");
  if (!j.is_object()) fail(path, "", "a JSON object", j);
  for (const auto& [key, value] : j.items())
    if (key != "name" && key != "base" && key != "set" && key != "axes" && key != "exclude" &&
        key != "include")
      fail(path, "/" + key, "no such key (a sweep has name, base, set, axes, exclude and include)",
           value);
  spec.name = j.value("name", fs::path(path).stem().string());
  if (spec.name.empty() || file_safe(spec.name) != spec.name)
    fail(path, "/name", "a name of letters, digits, '.', '-' and '_'", j.value("name", json()));
  if (!j.contains("base") || !j["base"].is_string())
    fail(path, "/base", "the base preset's path, relative to the sweep file",
         j.value("base", json()));
  spec.base_path = (fs::path(path).parent_path() / j["base"].get<std::string>()).string();
  if (!fs::exists(spec.base_path))
    fail(path, "/base", "an existing preset file (" + spec.base_path + " does not exist)",
         j["base"]);
  spec.base = parse_json_file(spec.base_path, "the base preset");
  if (!spec.base.is_object()) fail(spec.base_path, "", "a JSON object", spec.base);
  if (j.contains("set")) {
    if (!j["set"].is_object()) fail(path, "/set", "an object {\"config.path\": value}", j["set"]);
    for (const auto& [p, v] : j["set"].items()) {
      if (!is_config_path(p)) fail(path, "/set/" + p, "a dotted config path", v);
      apply(spec.base, p, v, path + ": /set");
    }
  }
  const json axes = j.value("axes", json::array());
  if (!axes.is_array()) fail(path, "/axes", "an array of axes", axes);
  std::set<std::string> names;
  for (size_t i = 0; i < axes.size(); ++i) {
    spec.axes.push_back(
        parse_axis(axes[i], ordered.at("axes").at(i), path, "/axes/" + std::to_string(i)));
    if (!names.insert(spec.axes.back().name).second)
      fail(path, "/axes/" + std::to_string(i), "each axis once", axes[i]);
  }
  spec.exclude = parse_rules(j, "exclude", path);
  spec.include = parse_rules(j, "include", path);
  return spec;
}

std::vector<GridCell> expand_grid(const SweepSpec& spec) {
  std::vector<std::string> problems;
  // Rules first: a rule naming an unknown axis or label would silently select nothing.
  auto check_rule = [&](const json& rule, const std::string& where, bool complete) {
    for (const auto& [name, value] : rule.items()) {
      const SweepAxis* axis = find_axis(spec, name);
      if (!axis) {
        problems.push_back(where + ": no axis named \"" + name + "\"");
        continue;
      }
      if (axis->variants && std::find(axis->labels.begin(), axis->labels.end(),
                                      axis_label(value)) == axis->labels.end())
        problems.push_back(where + ": axis \"" + name + "\" has no variant \"" + axis_label(value) +
                           "\"");
    }
    if (complete)
      for (const auto& axis : spec.axes)
        if (!rule.contains(axis.name))
          problems.push_back(where + ": gives no value for axis \"" + axis.name + "\"");
  };
  for (size_t i = 0; i < spec.exclude.size(); ++i)
    check_rule(spec.exclude[i], spec.path + ": /exclude/" + std::to_string(i), false);
  for (size_t i = 0; i < spec.include.size(); ++i)
    check_rule(spec.include[i], spec.path + ": /include/" + std::to_string(i), true);
  if (!problems.empty())
    reject(spec.path + ": " + std::to_string(problems.size()) + " problem(s) in the rules:",
           problems);

  // One assignment of a label or value to every axis, per cell.
  std::vector<json> choices;
  std::vector<size_t> odometer(spec.axes.size(), 0);
  for (bool more = true; more;) {
    json axes = json::object();
    bool excluded = false;
    for (size_t a = 0; a < spec.axes.size(); ++a) {
      const SweepAxis& axis = spec.axes[a];
      axes[axis.name] = axis.variants ? json(axis.labels[odometer[a]]) : axis.values[odometer[a]];
    }
    for (const auto& rule : spec.exclude) {
      bool all = true;
      for (const auto& [name, value] : rule.items()) {
        const SweepAxis* axis = find_axis(spec, name);
        const size_t at = size_t(axis - spec.axes.data());
        all = all && selects(*axis, odometer[at], value);
      }
      excluded = excluded || all;
    }
    if (!excluded) choices.push_back(axes);
    // Advance the last axis fastest, so the grid reads in file order.
    more = false;
    for (size_t a = spec.axes.size(); a-- > 0;) {
      if (++odometer[a] < spec.axes[a].values.size()) {
        more = true;
        break;
      }
      odometer[a] = 0;
    }
  }
  for (const auto& rule : spec.include) choices.push_back(rule);

  std::vector<GridCell> cells;
  std::set<std::string> ids;
  for (const json& axes : choices) {
    GridCell cell;
    json j = spec.base;
    std::string label;
    bool applied = true;
    for (const auto& axis : spec.axes) {
      const json& value = axes.at(axis.name);
      label += (label.empty() ? "" : " ") + axis.name + "=" + axis_label(value);
      const std::string source = spec.path + ": axis " + axis.name;
      try {
        if (axis.variants) {
          const size_t v =
              size_t(std::find(axis.labels.begin(), axis.labels.end(), axis_label(value)) -
                     axis.labels.begin());
          for (const auto& [p, x] : axis.values[v].items()) apply(j, p, x, source);
        } else {
          apply(j, axis.name, value, source);
        }
      } catch (const ConfigError& e) {
        problems.push_back("cell [" + label + "]: " + e.what());
        applied = false;
      }
    }
    if (!applied) continue;
    j["name"] = spec.name;
    cell.axes = axes;
    cell.label = label.empty() ? "base" : label;
    try {
      cell.config = config_from_json(j, spec.path + " cell [" + cell.label + "]");
    } catch (const ConfigError& e) {
      problems.push_back(e.what());
      continue;
    }
    cell.id = config_hash(cell.config);
    cell.dir_name = file_safe(cell.label) + "-" + cell.id.substr(0, 8);
    if (!ids.insert(cell.id).second) {
      problems.push_back("cell [" + cell.label +
                         "] resolves to the same config as an earlier cell");
      continue;
    }
    cells.push_back(std::move(cell));
  }
  if (!problems.empty())
    reject(spec.path + ": " + std::to_string(problems.size()) + " of " +
               std::to_string(choices.size()) + " grid cells fail validation:",
           problems);
  for (size_t i = 0; i < cells.size(); ++i) cells[i].index = int64_t(i);
  return cells;
}

}  // namespace statelab
