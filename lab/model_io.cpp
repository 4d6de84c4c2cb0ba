// Model parameters to and from safetensors.
#include "lab/model_io.hpp"

#include "kernels/error.hpp"

namespace statelab {

namespace {
std::vector<int64_t> dims(const Shape& s) {
  std::vector<int64_t> d;
  for (int i = 0; i < s.rank(); ++i) d.push_back(s[i]);
  return d;
}
}  // namespace

std::vector<safetensors::TensorRef> parameter_refs(const ParamStore<float>& ps,
                                                   const float* buffer,
                                                   const std::string& prefix) {
  std::vector<safetensors::TensorRef> refs;
  for (const auto& p : ps.infos())
    refs.push_back({prefix + p.name, safetensors::DType::F32, dims(p.shape), buffer + p.offset});
  return refs;
}

void load_parameters(const safetensors::Contents& contents, const ParamStore<float>& ps,
                     float* buffer, const std::string& prefix, const std::string& source) {
  for (const auto& p : ps.infos())
    safetensors::copy_tensor(contents, prefix + p.name, dims(p.shape), buffer + p.offset, source);
}

void save_model(Model<float>& model, const RunConfig& cfg, const std::string& path, int step) {
  auto& ps = model.params();
  ps.to_host();
  safetensors::save(path, parameter_refs(ps, ps.host_values(), ""),
                    {{"format", "statelab-model"},
                     {"config", to_json(cfg).dump()},
                     {"step", std::to_string(step)}});
}

int load_model(Model<float>& model, const std::string& path) {
  const auto contents = safetensors::load(path);
  auto& ps = model.params();
  load_parameters(contents, ps, ps.host_values(), "", path);
  ps.to_device();
  int step = -1;
  if (const auto it = contents.metadata.find("step"); it != contents.metadata.end()) {
    const std::string& text = it->second;
    if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos)
      throw IoError(path + ": metadata 'step' = \"" + text + "\" is not a step number");
    step = std::stoi(text);
  }
  if (contents.tensors.size() == ps.infos().size()) return step;
  for (const auto& name : contents.order) {
    bool known = false;
    for (const auto& p : ps.infos()) known = known || p.name == name;
    if (!known)
      throw IoError(path + ": tensor '" + name +
                    "' is not a parameter of the model this run's config.json describes");
  }
  return step;
}

}  // namespace statelab
