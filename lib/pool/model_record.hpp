// SPDX-License-Identifier: Apache-2.0
// model_record.hpp - a pool's model record as the model file (MODEL.json) it stands for,
// and as a ModelConfig with the token map the pool stores: what lets a host hash and
// gather with nothing but the pool (`engrampool model --from-pool`, the agent's
// "pool:NAME" model).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "model/model_config.hpp"
#include "pool/pool.hpp"
#include "util/status.hpp"

namespace engrampool {

// The model file of a record: every field the fingerprint covers. `mapRef` becomes its
// "vocab_map" (none when empty). The record is CRC-checked but untrusted beyond that:
// parseModelJson bounds every field when the file is read.
nlohmann::json modelRecordJson(const ModelRecord &m, const std::string &uri, const std::string &mapRef);

// The model `name` of the pool ("" = the pool's only model) with its stored token map,
// parsed the strict way and checked to rebuild to the record's fingerprint. -ENOENT: no
// such model, or several and no name; the token map's errors (tokenMap) otherwise.
Result<ModelConfig> poolModelConfig(const Pool &pool, const std::string &name);

} // namespace engrampool
