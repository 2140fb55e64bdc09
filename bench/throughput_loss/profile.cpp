// SPDX-License-Identifier: Apache-2.0
// profile.cpp - load backbone profiles, the per-layer time model, Engram table scaling.
#include "profile.hpp"

#include <algorithm>
#include <cmath>
#include <dirent.h>
#include <fstream>
#include <sstream>

#include "hashing/primes.hpp"

namespace engrampool::bench {

double Profile::layerUs(uint64_t tokens, uint64_t ctxTokens) const
{
	double bw = hbmGBps * hbmEfficiency * 1e3;     // bytes per us
	double f = tflops * mfu * 1e6;                 // FLOPs per us
	double mem = weightBytesPerLayer / bw;
	double compute = (double)tokens * 2.0 * paramsPerLayer / f;
	double attn = (double)ctxTokens * kvBytesPerToken / bw;
	return timeScale * (launchUs + std::max(mem, compute) + attn);
}

double Profile::stepOverheadUs(uint64_t logitSeqs) const
{
	double bw = hbmGBps * hbmEfficiency * 1e3;
	double f = tflops * mfu * 1e6;
	return timeScale * (stepFixedUs + std::max(lmHeadBytes / bw, (double)logitSeqs * 2.0 * lmHeadParams / f));
}

std::vector<uint32_t> Profile::engramLayers() const
{
	std::vector<uint32_t> v;
	for (auto &l : engram.at("layer_ids"))
		v.push_back(l.get<uint32_t>());
	return v;
}

std::vector<std::string> listProfiles(const std::string &dir)
{
	std::vector<std::string> out;
	if (DIR *d = opendir(dir.c_str())) {
		while (dirent *e = readdir(d)) {
			std::string n = e->d_name;
			if (n.size() > 5 && n.substr(n.size() - 5) == ".json")
				out.push_back(n.substr(0, n.size() - 5));
		}
		closedir(d);
	}
	std::sort(out.begin(), out.end());
	return out;
}

Result<Profile> loadProfile(const std::string &nameOrPath, const std::string &dir)
{
	std::string path = nameOrPath;
	if (path.find('/') == std::string::npos && (path.size() < 5 || path.substr(path.size() - 5) != ".json"))
		path = dir + "/" + path + ".json";
	std::ifstream f(path);
	if (!f) {
		std::string known;
		for (auto &n : listProfiles(dir))
			known += (known.empty() ? "" : ", ") + n;
		return makeError(-ENOENT, "profile '" + nameOrPath + "' not found (" + path + "); known profiles: " +
						  (known.empty() ? "none in " + dir : known));
	}
	std::stringstream ss;
	ss << f.rdbuf();
	Profile p;
	p.path = path;
	try {
		auto j = nlohmann::json::parse(ss.str());
		p.name = j.at("name").get<std::string>();
		p.description = j.value("description", "");
		p.source = j.value("source", "");
		auto &b = j.at("backbone");
		p.layers = b.at("layers").get<uint32_t>();
		p.paramsPerLayer = b.at("params_per_layer").get<double>();
		p.weightBytesPerLayer = b.at("weight_bytes_per_layer").get<double>();
		p.kvBytesPerToken = b.at("kv_bytes_per_token_per_layer").get<double>();
		p.lmHeadParams = b.at("lm_head_params").get<double>();
		p.lmHeadBytes = b.at("lm_head_bytes").get<double>();
		auto &g = j.at("gpu");
		p.gpu = g.at("name").get<std::string>();
		p.hbmGBps = g.at("hbm_gbps").get<double>();
		p.hbmEfficiency = g.value("hbm_efficiency", 0.8);
		p.tflops = g.at("tflops").get<double>();
		p.mfu = g.value("mfu", 0.5);
		p.launchUs = g.value("launch_us_per_layer", 0.0);
		p.stepFixedUs = g.value("step_fixed_us", 0.0);
		if (j.contains("calibration")) {
			p.timeScale = j["calibration"].value("time_scale", 1.0);
			p.targetTokensPerS = j["calibration"].value("target_tokens_per_s", 0.0);
		}
		p.engram = j.at("engram");
		if (j.contains("workload")) {
			auto &w = j["workload"];
			p.workload.sequences = w.value("sequences", p.workload.sequences);
			if (w.contains("prompt_len")) {
				p.workload.promptMin = w["prompt_len"][0];
				p.workload.promptMax = w["prompt_len"][1];
			}
			if (w.contains("output_len")) {
				p.workload.outputMin = w["output_len"][0];
				p.workload.outputMax = w["output_len"][1];
			}
			p.workload.maxBatchTokens = w.value("max_batch_tokens", p.workload.maxBatchTokens);
			p.workload.maxSeqs = w.value("max_seqs", p.workload.maxSeqs);
			p.workload.zipf = w.value("zipf", p.workload.zipf);
		}
	} catch (const std::exception &e) {
		return makeError(-EINVAL, "profile " + path + ": " + e.what());
	}
	if (p.layers == 0 || p.hbmGBps <= 0 || p.tflops <= 0 || p.timeScale <= 0)
		return makeError(-EINVAL, "profile " + path + ": layers, gpu.hbm_gbps, gpu.tflops and time_scale must be positive");
	for (auto l : p.engramLayers())
		if (l >= p.layers)
			return errorf(-EINVAL, "profile %s: Engram layer %u is past the backbone's %u layers", path.c_str(), l,
				      p.layers);
	return p;
}

Result<ModelConfig> scaledModel(const Profile &p, uint64_t budget, double *scaleOut)
{
	nlohmann::json j = p.engram;
	std::vector<double> nominal;
	for (auto &v : j.at("engram_vocab_size"))
		nominal.push_back(v.get<double>());
	auto bytesAt = [&](double s) -> Result<std::pair<uint64_t, ModelConfig>> {
		nlohmann::json k = j;
		k["engram_vocab_size"] = nlohmann::json::array();
		for (double v : nominal)
			k["engram_vocab_size"].push_back((uint64_t)std::max(1000.0, std::floor(v * s)));
		auto m = parseModelJson(k.dump(), "", p.name);
		if (!m)
			return m.status();
		uint64_t total = 0;
		for (uint64_t rows : hashing::tableRows(*m))
			total += rows * m->rowFormat.rowStride();
		return std::make_pair(total, std::move(m.value()));
	};
	auto full = bytesAt(1.0);
	if (!full)
		return full.status();
	double s = std::min(1.0, (double)budget / (double)full->first);
	for (int i = 0; i < 50; i++) {
		auto r = bytesAt(s);
		if (!r)
			return r.status();
		if (r->first <= budget || s < 1e-6) {
			if (scaleOut)
				*scaleOut = s;
			return std::move(r->second);
		}
		s *= 0.98;
	}
	return makeError(-EINVAL, "profile " + p.name + ": cannot fit the Engram tables in the pool budget");
}

} // namespace engrampool::bench
