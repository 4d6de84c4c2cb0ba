// Model parameters to and from safetensors.
#include "lab/model_io.hpp"

#include "kernels/error.hpp"
#include "lab/safetensors.hpp"

namespace statelab {

namespace {
std::vector<int64_t> dims(const Shape& s) {
  std::vector<int64_t> d;
  for (int i = 0; i < s.rank(); ++i) d.push_back(s[i]);
  return d;
}
}  // namespace

void save_model(const Model<float>& model, const RunConfig& cfg, const std::string& path) {
  const auto& ps = model.params();
  std::vector<safetensors::TensorRef> refs;
  for (ParamId id = 0; id < ParamId(ps.infos().size()); ++id) {
    const Tensor<const float> t = ps.tensor(id);
    refs.push_back({ps.info(id).name, safetensors::DType::F32, dims(t.shape), t.data});
  }
  safetensors::save(path, refs,
                    {{"format", "statelab-model"}, {"config", to_json(cfg).dump()}});
}

void load_model(Model<float>& model, const std::string& path) {
  const auto contents = safetensors::load(path);
  auto& ps = model.params();
  for (const auto& p : ps.infos())
    safetensors::copy_tensor(contents, p.name, dims(p.shape), ps.values() + p.offset, path);
  if (contents.tensors.size() != ps.infos().size()) {
    for (const auto& name : contents.order) {
      bool known = false;
      for (const auto& p : ps.infos()) known = known || p.name == name;
      if (!known)
        throw IoError(path + ": tensor '" + name +
                      "' is not a parameter of the model this run's config.json describes");
    }
  }
}

}  // namespace statelab
