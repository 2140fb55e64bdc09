// SPDX-License-Identifier: Apache-2.0
// pool_fixture.hpp - shared helpers of the pool tests: small models, scoped pools, random imports, CLI runs.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/layout.hpp"
#include "hashing/primes.hpp"
#include "io/row_source.hpp"
#include "model/model_config.hpp"
#include "pool/pool.hpp"
#include "region/hugepages.hpp"
#include "region/region.hpp"
#include "test_util.hpp"
#include "util/checksum.hpp"

namespace eptest {

using engrampool::ModelConfig;
using engrampool::Pool;
using engrampool::TableInfo;

// The small model of the tests: N=3 (two orders), 4 heads, 64-wide -> 16 fp32 values per row.
inline nlohmann::json tinyModelJson()
{
	return {{"name", "tiny"},
		{"tokenizer_vocab_size", 1000},
		{"compressed_vocab_size", 1000},
		{"engram_vocab_size", {5000, 7000}},
		{"max_ngram_size", 3},
		{"n_embed_per_ngram", 64},
		{"n_head_per_ngram", 4},
		{"layer_ids", {1, 15}},
		{"pad_id", 0},
		{"seed", 0}};
}

// Parse a model JSON; a bad fixture throws (gtest reports it as a failure).
inline ModelConfig makeModel(const nlohmann::json &j)
{
	auto r = engrampool::parseModelJson(j.dump(), "", "model");
	if (!r)
		throw std::runtime_error("fixture model does not parse: " + r.status().message());
	return r.value();
}

inline ModelConfig tinyModel() { return makeModel(tinyModelJson()); }

// A compressed token map for the tiny geometry: 1000 tokenizer ids -> 700 dense ids.
inline const std::vector<int64_t> &mappedTokenMap()
{
	static const std::vector<int64_t> map = [] {
		std::vector<int64_t> m(1000);
		for (size_t i = 0; i < m.size(); i++)
			m[i] = (int64_t)((i * 3) % 700);
		return m;
	}();
	return map;
}

// The tiny geometry with that map ("vocab_map" names MAP.npy; the map itself is given
// in memory, so no file is needed unless the JSON is written out beside one).
inline nlohmann::json mappedModelJson(const std::string &name = "mapped", const std::string &mapFile = "mapped.npy")
{
	nlohmann::json j = tinyModelJson();
	j["name"] = name;
	j.erase("compressed_vocab_size");
	j["vocab_map"] = mapFile;
	return j;
}

inline ModelConfig mappedModel(const std::string &name = "mapped")
{
	engrampool::ModelParseOptions o;
	o.vocabMap = &mappedTokenMap();
	auto r = engrampool::parseModelJson(mappedModelJson(name).dump(), "", name, o);
	if (!r)
		throw std::runtime_error("fixture model does not parse: " + r.status().message());
	return r.value();
}

// Rows of the table of layer `layer`.
inline uint64_t layerRows(const ModelConfig &cfg, uint32_t layer)
{
	auto rows = engrampool::hashing::tableRows(cfg);
	for (size_t i = 0; i < cfg.layerIds.size(); i++)
		if (cfg.layerIds[i] == layer)
			return rows[i];
	throw std::runtime_error("layer " + std::to_string(layer) + " is not in the model");
}

// Import layer `layer` with rows from makeRandomSource(seed).
inline engrampool::Result<engrampool::ImportResult> importRandom(Pool &p, const ModelConfig &cfg, uint32_t layer,
								 uint64_t seed, const std::string &name = "",
								 bool replace = false)
{
	uint64_t rows = layerRows(cfg, layer);
	auto src = engrampool::io::makeRandomSource(cfg.rowFormat, rows, seed);
	engrampool::ImportRequest req;
	req.tableName = name;
	req.model = &cfg;
	req.layerId = layer;
	req.rows = rows;
	req.replace = replace;
	return p.importTable(req, *src);
}

// Open a pool or throw with the library's message.
inline std::unique_ptr<Pool> openPool(const std::string &uri, bool write, uint32_t lockWaitMs = 2000)
{
	engrampool::OpenOptions o;
	o.write = write;
	o.lockWaitMs = lockWaitMs;
	auto p = Pool::open(uri, o);
	if (!p)
		throw std::runtime_error("open " + uri + ": " + p.status().message());
	return std::move(p.value());
}

// Number of sampled rows (plus row 0 and the last row) whose stored bytes (full stride,
// padding included) differ from randomRow(seed). Reads through readRows too.
inline uint64_t rowMismatches(const Pool &p, const TableInfo &t, const engrampool::RowFormat &fmt, uint64_t seed,
			      int samples, uint64_t rngSeed = 1)
{
	std::mt19937_64 rng(rngSeed);
	std::vector<uint8_t> want(fmt.rowStride()), got(t.rowBytes);
	uint64_t bad = 0;
	for (int i = 0; i < samples + 2; i++) {
		uint64_t r = i == 0 ? 0 : i == 1 ? t.rows - 1 : rng() % t.rows;
		engrampool::io::randomRow(fmt, seed, r, want.data());
		const uint8_t *stored = p.tableData(t) + r * t.rowStride;
		if (std::memcmp(stored, want.data(), t.rowStride) != 0)
			bad++;
		if (!p.readRows(t, &r, 1, got.data(), got.size()) ||
		    std::memcmp(got.data(), want.data(), t.rowBytes) != 0)
			bad++;
	}
	return bad;
}

// A pool that is destroyed at scope end (emul: shm object or file: in a temp dir).
class ScopedPool {
public:
	// kind "emul" or "file"
	explicit ScopedPool(const std::string &kind, uint64_t size = 32ull << 20, bool create = true)
	{
		if (kind == "emul") {
			uri_ = "emul:" + uniqueName("eptest");
		} else {
			dir_ = std::make_unique<TempDir>();
			path_ = dir_->file("pool");
			uri_ = "file:" + path_;
		}
		if (create) {
			engrampool::CreateOptions o;
			o.size = size;
			// 4 KiB pages: tests truncate and poke the backing file at any offset, which a
			// hugetlbfs file refuses (tests/region/test_hugepages.cpp covers huge pages).
			o.pages = engrampool::PagePref::Small;
			auto s = Pool::create(uri_, o);
			if (!s)
				throw std::runtime_error("create " + uri_ + ": " + s.message());
		}
	}
	~ScopedPool()
	{
		if (auto u = engrampool::parseRegionUri(uri_); u && u->kind == engrampool::RegionKind::Emul)
			(void)engrampool::Region::destroy(*u);
	}
	ScopedPool(const ScopedPool &) = delete;
	ScopedPool &operator=(const ScopedPool &) = delete;
	const std::string &uri() const { return uri_; }
	// Backing file of the pool (file: path, or wherever the emul: pool lives).
	std::string backingPath() const
	{
		auto u = engrampool::parseRegionUri(uri_);
		if (u && u->kind == engrampool::RegionKind::Emul) {
			std::string at = engrampool::hugepages::locateEmul(u->name);
			return at.empty() ? u->path : at;
		}
		return u ? u->path : path_;
	}
	std::string tmpFile(const std::string &name)
	{
		if (!dir_)
			dir_ = std::make_unique<TempDir>();
		return dir_->file(name);
	}

private:
	std::unique_ptr<TempDir> dir_;
	std::string path_, uri_;
};

// Overwrite bytes of a pool's backing file through a separate writable shared mapping.
inline void pokeBytes(const std::string &path, uint64_t offset, const void *bytes, size_t len)
{
	int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
	if (fd < 0)
		throw std::runtime_error("open " + path + ": " + strerror(errno));
	struct stat st;
	fstat(fd, &st);
	if (offset + len > (uint64_t)st.st_size) {
		close(fd);
		throw std::runtime_error("poke outside the file");
	}
	void *m = mmap(nullptr, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		throw std::runtime_error("mmap " + path + ": " + strerror(errno));
	std::memcpy(static_cast<uint8_t *>(m) + offset, bytes, len);
	msync(m, (size_t)st.st_size, MS_SYNC);
	munmap(m, (size_t)st.st_size);
}

inline std::vector<uint8_t> peekBytes(const std::string &path, uint64_t offset, size_t len)
{
	std::vector<uint8_t> out(len);
	int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0 || pread(fd, out.data(), len, (off_t)offset) != (ssize_t)len) {
		if (fd >= 0)
			close(fd);
		throw std::runtime_error("read " + path);
	}
	close(fd);
	return out;
}

inline void pokeRandom(const std::string &path, uint64_t offset, size_t len, uint64_t seed)
{
	std::mt19937_64 rng(seed);
	std::vector<uint8_t> b(len);
	for (auto &x : b)
		x = (uint8_t)rng();
	pokeBytes(path, offset, b.data(), len);
}

// XXH3 of the metadata area [0, data offset): "nothing changed" checks.
inline uint64_t metadataHash(const std::string &path)
{
	auto b = peekBytes(path, 0, engrampool::format::kDataOffset);
	return engrampool::xxh3(b.data(), b.size());
}

// Set (or unset with nullptr) an environment variable for the scope.
class ScopedEnv {
public:
	ScopedEnv(const char *name, const char *value) : name_(name)
	{
		if (const char *old = getenv(name)) {
			had_ = true;
			old_ = old;
		}
		if (value)
			setenv(name, value, 1);
		else
			unsetenv(name);
	}
	~ScopedEnv()
	{
		if (had_)
			setenv(name_.c_str(), old_.c_str(), 1);
		else
			unsetenv(name_.c_str());
	}

private:
	std::string name_, old_;
	bool had_ = false;
};

inline std::string cliPath() { return buildRoot() + "/pool_manager/engrampool"; }

struct CliResult {
	int rc = -1;
	std::string out, err;
	nlohmann::json json() const
	{
		auto j = nlohmann::json::parse(out, nullptr, false);
		return j;
	}
	// Non-empty lines of stderr.
	std::vector<std::string> errLines() const
	{
		std::vector<std::string> v;
		std::stringstream ss(err);
		std::string l;
		while (std::getline(ss, l))
			if (!l.empty())
				v.push_back(l);
		return v;
	}
};

// Run the CLI with `args` (shell words), stdout and stderr captured apart. `envPrefix`
// is put before the command ("EP_HOST_ID=... ").
inline CliResult runCliBinary(const std::string &binary, const std::string &args, const std::string &envPrefix = "")
{
	TempDir d;
	std::string errFile = d.file("stderr");
	CliResult r;
	r.rc = runCommand(envPrefix + binary + " " + args + " 2>" + errFile + " </dev/null", &r.out, false);
	std::ifstream f(errFile);
	std::stringstream ss;
	ss << f.rdbuf();
	r.err = ss.str();
	return r;
}

inline CliResult runCli(const std::string &args, const std::string &envPrefix = "")
{
	return runCliBinary(cliPath(), args, envPrefix);
}

inline void writeFile(const std::string &path, const std::string &text)
{
	std::ofstream f(path, std::ios::binary);
	f << text;
}

// A .npy file with the given header shape and raw data bytes (possibly fewer than the shape needs).
inline void writeNpyFile(const std::string &path, const std::string &descr, const std::vector<uint64_t> &shape,
			 const std::vector<uint8_t> &data)
{
	std::string sh = "(";
	for (size_t i = 0; i < shape.size(); i++)
		sh += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? ", " : "");
	if (shape.size() == 1)
		sh.pop_back();
	sh += ")";
	std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + sh + ", }";
	size_t total = 10 + dict.size() + 1;
	dict += std::string((64 - total % 64) % 64, ' ') + "\n";
	std::string out = "\x93NUMPY";
	out += '\x01';
	out += '\x00';
	out += (char)(dict.size() & 0xff);
	out += (char)((dict.size() >> 8) & 0xff);
	out += dict;
	out.append(reinterpret_cast<const char *>(data.data()), data.size());
	writeFile(path, out);
}

} // namespace eptest
