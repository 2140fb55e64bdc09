// SPDX-License-Identifier: Apache-2.0
// engrampool_py.cpp - the pybind11 extension engrampool._engrampool.
//
// Binds the public C ABI (engrampool.h) for pools, tables, planes, row reads and the
// agent; the hasher (no C entry point), the host table and CUDA host registration come
// from the library's internals (the extension links the static archive, so the
// process holds one copy of the library). Every call that can block or gather runs
// with the GIL released. Library failures raise engrampool.Error (a RuntimeError with
// .code and the library's one-line message); bad arguments raise ValueError or
// TypeError naming the argument.
//
// Lifetimes: arrays over the pool mapping or an agent's staging memory hold the
// mapping/agent alive through their numpy base object (a capsule owning a shared
// reference), so close() on a Pool or Agent never unmaps memory a live array points
// into: it stops the object's own use, and the last view frees the memory.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <engrampool/engrampool.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "device/cuda.hpp"
#include "hashing/hasher.hpp"
#include "model/model_config.hpp"
#include "agent/agent.hpp"
#include "pool/model_record.hpp"
#include "pool/pool.hpp"

namespace py = pybind11;
using namespace engrampool;

namespace {

// ---------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------
struct LibError : std::exception {
	int code;
	std::string msg;
	LibError(int c, std::string m) : code(c), msg(std::move(m)) {}
	const char *what() const noexcept override { return msg.c_str(); }
};

PyObject *g_error = nullptr; // engrampool.Error

// what: the call ("open 'file:/x'"); the message is the library's for this thread
// when it set one, else the code's name.
[[noreturn]] void raiseLib(int code, const std::string &what, bool useMessage = true)
{
	std::string m;
	const char *lm = useMessage ? ep_errormsg() : nullptr;
	if (lm && *lm)
		m = lm;
	else
		m = ep_strerror(code);
	throw LibError(code, what + ": " + m);
}

[[noreturn]] void raiseValue(const std::string &m) { throw py::value_error(m); }
[[noreturn]] void raiseType(const std::string &m) { throw py::type_error(m); }

// ---------------------------------------------------------------------------------
// numpy helpers
// ---------------------------------------------------------------------------------
py::object keepAlive(std::shared_ptr<void> p)
{
	auto *holder = new std::shared_ptr<void>(std::move(p));
	return py::capsule(holder, [](void *q) { delete static_cast<std::shared_ptr<void> *>(q); });
}

py::array viewArray(const void *ptr, const py::dtype &dt, std::vector<py::ssize_t> shape,
		    std::vector<py::ssize_t> strides, const py::object &base, bool readonly)
{
	py::array a(dt, std::move(shape), std::move(strides), ptr, base);
	if (readonly)
		py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
	return a;
}

// An integer array (any shape) as a C-contiguous uint64 copy or view; negative ids refused.
py::array_t<uint64_t> rowIdArray(const py::handle &obj, const char *arg)
{
	py::array a = py::array::ensure(obj);
	if (!a)
		raiseType(std::string(arg) + ": expected an array of integer row ids");
	const char kind = a.dtype().kind();
	if (kind != 'i' && kind != 'u')
		raiseType(std::string(arg) + ": expected integer row ids, got dtype " + py::str(a.dtype()).cast<std::string>());
	if (kind == 'i' && a.size() > 0) {
		py::array_t<int64_t, py::array::c_style | py::array::forcecast> s(a);
		const int64_t *d = s.data();
		for (py::ssize_t i = 0; i < s.size(); i++)
			if (d[i] < 0)
				raiseValue(std::string(arg) + ": row id " + std::to_string(d[i]) + " at index " + std::to_string(i) +
					   " is negative");
		return py::array_t<uint64_t>(s.attr("astype")("uint64", py::arg("copy") = false));
	}
	return py::array_t<uint64_t, py::array::c_style | py::array::forcecast>(a);
}

const char *dtypeName(uint32_t d)
{
	switch (d) {
	case EP_DTYPE_NONE: return "none";
	case EP_DTYPE_FP32: return "fp32";
	case EP_DTYPE_BF16: return "bf16";
	case EP_DTYPE_FP16: return "fp16";
	case EP_DTYPE_FP8_E4M3: return "fp8-e4m3";
	case EP_DTYPE_E8M0: return "e8m0";
	default: return "unknown";
	}
}

uint32_t dtypeSize(uint32_t d)
{
	switch (d) {
	case EP_DTYPE_FP32: return 4;
	case EP_DTYPE_BF16:
	case EP_DTYPE_FP16: return 2;
	case EP_DTYPE_FP8_E4M3:
	case EP_DTYPE_E8M0: return 1;
	default: return 0;
	}
}

// numpy dtype of a stored value type (bf16 as uint16: numpy has no bfloat16).
py::dtype valueDtype(uint32_t d)
{
	switch (d) {
	case EP_DTYPE_FP32: return py::dtype("float32");
	case EP_DTYPE_FP16: return py::dtype("float16");
	case EP_DTYPE_BF16: return py::dtype("uint16");
	default: return py::dtype("uint8");
	}
}

int parseFormat(const std::string &f, const char *arg)
{
	if (f == "packed") return EP_OUT_PACKED;
	if (f == "values") return EP_OUT_VALUES;
	if (f == "scales") return EP_OUT_SCALES;
	if (f == "f32") return EP_OUT_F32;
	if (f == "bf16") return EP_OUT_BF16;
	if (f == "planes") return EP_OUT_PLANES;
	raiseValue(std::string(arg) + ": unknown format '" + f + "' (packed, values, scales, planes, f32, bf16)");
}

// Bytes per row of an output format for a table's row format.
struct RowShape {
	uint32_t dtype = 0, values = 0, scaleDtype = 0, scales = 0, rowBytes = 0;
	uint32_t valueBytes() const { return values * dtypeSize(dtype); }
	uint64_t bytesPerRow(int fmt) const
	{
		switch (fmt) {
		case EP_OUT_PACKED: return rowBytes;
		case EP_OUT_VALUES: return valueBytes();
		case EP_OUT_SCALES: return scales;
		case EP_OUT_F32: return 4ull * values;
		case EP_OUT_BF16: return 2ull * values;
		case EP_OUT_PLANES: return valueBytes() + scales;
		}
		return 0;
	}
};

RowShape rowShape(const ep_table_info &t)
{
	RowShape r;
	r.dtype = t.dtype;
	r.values = t.values_per_row;
	r.scaleDtype = t.scale_dtype;
	r.scales = t.scale_dtype == EP_DTYPE_NONE ? 0 : t.scales_per_row;
	r.rowBytes = t.row_bytes;
	return r;
}

// ---------------------------------------------------------------------------------
// PyPool and PyTable
// ---------------------------------------------------------------------------------
struct PoolState {
	ep_pool *pool = nullptr;
	std::string uri;
	bool closed = false; // close() was called: no new use, the mapping lives on for views
	~PoolState() { ep_pool_close(&pool); }
};
using PoolRef = std::shared_ptr<PoolState>;

ep_pool *livePool(const PoolRef &s)
{
	if (!s || s->closed || !s->pool)
		raiseValue("pool is closed");
	return s->pool;
}

py::dict tableDict(const ep_table_info &t)
{
	py::dict d;
	d["name"] = std::string(t.name);
	d["model"] = std::string(t.model);
	d["model_fingerprint"] = t.model_fingerprint;
	d["layer"] = t.layer_id;
	d["dtype"] = dtypeName(t.dtype);
	d["values_per_row"] = t.values_per_row;
	d["scale_dtype"] = dtypeName(t.scale_dtype);
	d["scales_per_row"] = t.scales_per_row;
	d["row_bytes"] = t.row_bytes;
	d["row_stride"] = t.row_stride;
	d["layout"] = t.layout == EP_LAYOUT_PLANAR ? "planar" : "packed";
	d["rows"] = t.rows;
	d["data_offset"] = t.data_offset;
	d["data_bytes"] = t.data_bytes;
	d["data_xxh3"] = t.data_xxh3;
	d["generation"] = t.generation;
	return d;
}

struct PyTable {
	PoolRef state;
	ep_table_info info{};

	std::string name() const { return info.name; }

	ep_table_planes rawPlanes(const py::object &h0o, const py::object &h1o) const
	{
		uint32_t h0 = 0, h1 = 0;
		if (h0o.is_none() != h1o.is_none())
			raiseValue("planes: give both h0 and h1 (a head range [h0, h1)), or neither for all heads");
		if (!h0o.is_none()) {
			long long a = h0o.cast<long long>(), b = h1o.cast<long long>();
			if (a < 0 || b < 0 || a > b || b > UINT32_MAX)
				raiseValue("planes: h0, h1 must satisfy 0 <= h0 <= h1 (got " + std::to_string(a) + ", " +
					   std::to_string(b) + ")");
			h0 = (uint32_t)a;
			h1 = (uint32_t)b;
			if (h0 == 0 && h1 == 0)
				raiseValue("planes: the head range [0, 0) is empty (omit h0 and h1 for all heads)");
		}
		ep_pool *p = livePool(state);
		ep_table_planes pl{};
		int rc;
		{
			py::gil_scoped_release nogil;
			rc = ep_pool_table_planes(p, info.name, h0, h1, &pl);
		}
		if (rc)
			raiseLib(rc, "planes of table '" + name() + "'");
		return pl;
	}

	py::dict planesInfo(const py::object &h0, const py::object &h1) const
	{
		ep_table_planes pl = rawPlanes(h0, h1);
		py::dict d;
		d["values"] = (uintptr_t)pl.values;
		d["values_pitch"] = pl.values_pitch;
		d["scales"] = (uintptr_t)pl.scales;
		d["scales_pitch"] = pl.scales_pitch;
		d["row_begin"] = pl.row_begin;
		d["row_end"] = pl.row_end;
		d["layout"] = pl.layout == EP_LAYOUT_PLANAR ? "planar" : "packed";
		d["values_bytes"] = pl.values_bytes;
		d["scales_bytes"] = pl.scales_bytes;
		return d;
	}

	py::tuple planes(const py::object &h0, const py::object &h1) const
	{
		ep_table_planes pl = rawPlanes(h0, h1);
		const py::ssize_t n = (py::ssize_t)(pl.row_end - pl.row_begin);
		py::object base = keepAlive(state);
		// Typed values where the pitch allows it (fp32/fp16/bf16 rows), bytes otherwise.
		py::dtype vdt = valueDtype(info.dtype);
		py::ssize_t vsize = vdt.itemsize();
		if (vsize > 1 && (pl.values_pitch % vsize || pl.values_bytes % vsize || (uintptr_t)pl.values % vsize)) {
			vdt = py::dtype("uint8");
			vsize = 1;
		}
		py::array values = viewArray(pl.values, vdt, {n, (py::ssize_t)(pl.values_bytes / vsize)},
					     {(py::ssize_t)pl.values_pitch, vsize}, base, true);
		py::object scales = py::none();
		if (pl.scales && pl.scales_bytes)
			scales = viewArray(pl.scales, py::dtype("uint8"), {n, (py::ssize_t)pl.scales_bytes},
					   {(py::ssize_t)pl.scales_pitch, 1}, base, true);
		return py::make_tuple(values, scales);
	}

	py::array rows(const py::object &ids, const std::string &format) const
	{
		const int fmt = parseFormat(format, "format");
		py::array_t<uint64_t> r = rowIdArray(ids, "ids");
		const RowShape rs = rowShape(info);
		if ((fmt == EP_OUT_SCALES || fmt == EP_OUT_PLANES) && !rs.scales)
			raiseValue("format: table '" + name() + "' has no scales");
		const size_t n = (size_t)r.size();
		py::array out;
		switch (fmt) {
		case EP_OUT_F32: out = py::array(py::dtype("float32"), {(py::ssize_t)n, (py::ssize_t)rs.values}); break;
		case EP_OUT_BF16: out = py::array(py::dtype("uint16"), {(py::ssize_t)n, (py::ssize_t)rs.values}); break;
		case EP_OUT_VALUES:
			out = py::array(valueDtype(rs.dtype), {(py::ssize_t)n, (py::ssize_t)rs.values});
			break;
		default:
			out = py::array(py::dtype("uint8"), {(py::ssize_t)n, (py::ssize_t)rs.bytesPerRow(fmt)});
		}
		ep_pool *p = livePool(state);
		const uint64_t *ids_p = r.data();
		void *dst = out.mutable_data();
		const size_t bytes = (size_t)out.nbytes();
		int rc;
		{
			py::gil_scoped_release nogil;
			rc = fmt == EP_OUT_PACKED ? ep_pool_read_rows(p, info.name, ids_p, n, dst, bytes)
						  : ep_pool_read_rows_as(p, info.name, ids_p, n, fmt, dst, bytes);
		}
		if (rc)
			raiseLib(rc, "rows of table '" + name() + "'");
		return out;
	}
};

struct PyPool {
	PoolRef state;

	explicit PyPool(const std::string &uri, bool write)
	{
		if (uri.empty())
			raiseValue("uri: empty pool URI");
		auto s = std::make_shared<PoolState>();
		s->uri = uri;
		int rc;
		{
			py::gil_scoped_release nogil;
			rc = ep_pool_open(&s->pool, uri.c_str(), write ? EP_OPEN_WRITE : EP_OPEN_READONLY);
		}
		if (rc)
			raiseLib(rc, "open '" + uri + "'");
		state = std::move(s);
	}

	void close()
	{
		if (state)
			state->closed = true;
		state.reset();
	}
	bool closed() const { return !state; }

	std::vector<ep_table_info> listTables() const
	{
		ep_pool *p = livePool(state);
		std::vector<ep_table_info> v;
		for (int attempt = 0; attempt < 8; attempt++) {
			size_t n = 0;
			int rc = ep_pool_list_tables(p, v.data(), v.size(), &n);
			if (rc)
				raiseLib(rc, "list tables of '" + state->uri + "'");
			if (n <= v.size()) {
				v.resize(n);
				return v;
			}
			v.resize(n);
		}
		raiseLib(EP_E_RETRY, "list tables of '" + state->uri + "'", false);
	}

	std::vector<PyTable> tables() const
	{
		std::vector<PyTable> out;
		for (const auto &t : listTables())
			out.push_back(PyTable{state, t});
		return out;
	}

	PyTable table(const std::string &name) const
	{
		ep_pool *p = livePool(state);
		PyTable t{state, {}};
		int rc = ep_pool_find_table(p, name.c_str(), &t.info);
		if (rc)
			raiseLib(rc, "table '" + name + "'");
		return t;
	}

	// The token map the pool stores for a model: int64 [tokenizer_vocab_size].
	py::array_t<int64_t> tokenMap(const std::string &model) const
	{
		ep_pool *p = livePool(state);
		for (int attempt = 0; attempt < 8; attempt++) {
			size_t n = 0;
			int rc;
			{
				py::gil_scoped_release nogil;
				rc = ep_pool_model_token_map(p, model.c_str(), nullptr, 0, &n);
			}
			if (rc)
				raiseLib(rc, "token map of model '" + model + "'");
			py::array_t<int64_t> out((py::ssize_t)n);
			int64_t *dst = out.mutable_data();
			size_t got = 0;
			{
				py::gil_scoped_release nogil;
				rc = ep_pool_model_token_map(p, model.c_str(), dst, n, &got);
			}
			if (rc)
				raiseLib(rc, "token map of model '" + model + "'");
			if (got == n)
				return out;
		}
		raiseLib(EP_E_RETRY, "token map of model '" + model + "'", false);
	}

	py::dict stat() const
	{
		ep_pool *p = livePool(state);
		ep_pool_info i{};
		int rc = ep_pool_info_get(p, &i);
		if (rc)
			raiseLib(rc, "stat '" + state->uri + "'");
		char uuid[33];
		for (int k = 0; k < 16; k++)
			snprintf(uuid + 2 * k, 3, "%02x", i.uuid[k]);
		py::dict d;
		d["uri"] = state->uri;
		d["uuid"] = std::string(uuid);
		d["size"] = i.size;
		d["align_unit"] = i.align_unit;
		d["data_offset"] = i.data_offset;
		d["data_bytes"] = i.data_bytes;
		d["used_bytes"] = i.used_bytes;
		d["generation"] = i.generation;
		d["master_epoch"] = i.master_epoch;
		d["format"] = std::to_string(i.format_major) + "." + std::to_string(i.format_minor);
		d["tables"] = i.tables;
		d["models"] = i.models;
		d["catalog_slots"] = i.catalog_slots;
		d["host_slots"] = i.host_slots;
		return d;
	}

	// The host table has no C entry point: a short read-only open of the internal pool.
	py::list hosts() const
	{
		livePool(state);
		std::vector<HostInfo> hs;
		Status st;
		{
			py::gil_scoped_release nogil;
			OpenOptions o;
			auto p = engrampool::Pool::open(state->uri, o);
			if (p)
				hs = (*p)->hosts();
			else
				st = p.status();
		}
		if (!st)
			throw LibError(st.code(), "hosts of '" + state->uri + "': " + st.message());
		py::list out;
		for (const auto &h : hs) {
			py::dict d;
			d["slot"] = h.index;
			char u[33];
			for (int k = 0; k < 16; k++)
				snprintf(u + 2 * k, 3, "%02x", h.host[k]);
			d["host"] = std::string(u);
			d["hostname"] = h.hostname;
			d["pid"] = h.pid;
			d["state"] = h.corrupt ? "corrupt" : h.state == 2 ? "detached" : h.live ? "live" : "expired";
			d["observed_generation"] = h.observedGen;
			d["heartbeat_ns"] = h.heartbeatNs;
			d["lease_ms"] = h.leaseMs;
			out.append(d);
		}
		return out;
	}
};

// ---------------------------------------------------------------------------------
// PyHasher
// ---------------------------------------------------------------------------------
struct PyHasher {
	std::shared_ptr<const hashing::EngramHasher> h;
	std::string path;

	explicit PyHasher(const std::string &modelPath) : path(modelPath)
	{
		Status st;
		{
			py::gil_scoped_release nogil;
			auto cfg = loadModelFile(modelPath);
			if (!cfg) {
				st = cfg.status();
			} else {
				auto layout = hashing::ModelLayout::create(*cfg);
				if (!layout) {
					st = layout.status();
				} else {
					auto hs = hashing::EngramHasher::create(*layout);
					if (!hs)
						st = hs.status();
					else
						h = std::make_shared<const hashing::EngramHasher>(std::move(hs.value()));
				}
			}
		}
		if (!st)
			throw LibError(st.code(), "model '" + modelPath + "': " + st.message());
	}

	std::vector<uint32_t> layerIds() const
	{
		std::vector<uint32_t> v;
		for (const auto &l : h->layout().layers())
			v.push_back(l.layerId);
		return v;
	}

	// tokens: int64 [B, T] (B sequences of T) or a list of 1-D sequences (ragged).
	// Returns uint64 [layers, B, T, J] or [layers, total, J].
	py::array hash(const py::object &batch, const py::object &dead, const std::string &kind) const
	{
		hashing::HashOutput what;
		if (kind == "rows")
			what = hashing::HashOutput::RowIds;
		else if (kind == "hash")
			what = hashing::HashOutput::HashIds;
		else
			raiseValue("kind: '" + kind + "' is neither 'rows' nor 'hash'");
		std::vector<int64_t> tokens;
		std::vector<uint64_t> offsets{0};
		std::vector<uint8_t> flags;
		std::vector<py::ssize_t> lead;
		const bool isArray = py::isinstance<py::array>(batch);
		if (isArray) {
			py::array a = batch;
			if (a.dtype().kind() != 'i' && a.dtype().kind() != 'u')
				raiseType("batch: expected integer token ids, got dtype " + py::str(a.dtype()).cast<std::string>());
			if (a.ndim() != 2)
				raiseValue("batch: expected a [B, T] array of token ids (or a list of sequences), got " +
					   std::to_string(a.ndim()) + " dimensions");
			py::array_t<int64_t, py::array::c_style | py::array::forcecast> t(a);
			const py::ssize_t B = t.shape(0), T = t.shape(1);
			tokens.assign(t.data(), t.data() + B * T);
			for (py::ssize_t b = 0; b < B; b++)
				offsets.push_back((uint64_t)((b + 1) * T));
			lead = {B, T};
		} else {
			if (!py::isinstance<py::sequence>(batch) || py::isinstance<py::str>(batch))
				raiseType("batch: expected a [B, T] integer array or a list of token sequences");
			for (const py::handle &s : batch.cast<py::sequence>()) {
				py::array a = py::array::ensure(s);
				if (!a || (a.size() && a.dtype().kind() != 'i' && a.dtype().kind() != 'u'))
					raiseType("batch: each sequence must be a list or array of integer token ids");
				if (a.ndim() > 1)
					raiseValue("batch: each sequence must be one-dimensional");
				py::array_t<int64_t, py::array::c_style | py::array::forcecast> t(a);
				tokens.insert(tokens.end(), t.data(), t.data() + t.size());
				offsets.push_back(tokens.size());
			}
			lead = {(py::ssize_t)tokens.size()};
		}
		if (!dead.is_none()) {
			if (isArray) {
				py::array d = py::array::ensure(dead);
				if (!d || d.ndim() != 2 || d.shape(0) != lead[0] || d.shape(1) != lead[1])
					raiseValue("dead: expected flags of the batch's shape [B, T]");
				py::array_t<uint8_t, py::array::c_style | py::array::forcecast> f(d.attr("astype")("bool"));
				flags.assign(f.data(), f.data() + f.size());
			} else {
				py::sequence ds = dead.cast<py::sequence>();
				if ((size_t)py::len(ds) != offsets.size() - 1)
					raiseValue("dead: expected one flag list per sequence");
				size_t i = 0;
				for (const py::handle &s : ds) {
					const size_t want = offsets[i + 1] - offsets[i];
					if (s.is_none()) {
						flags.insert(flags.end(), want, 0);
					} else {
						py::array d = py::array::ensure(s);
						if (!d || (size_t)d.size() != want || d.ndim() > 1)
							raiseValue("dead: sequence " + std::to_string(i) + " needs " + std::to_string(want) +
								   " flags");
						py::array_t<uint8_t, py::array::c_style | py::array::forcecast> f(d.attr("astype")("bool"));
						flags.insert(flags.end(), f.data(), f.data() + f.size());
					}
					i++;
				}
			}
		}
		const size_t L = h->layerCount(), J = h->columns(), T = tokens.size();
		std::vector<py::ssize_t> shape{(py::ssize_t)L};
		shape.insert(shape.end(), lead.begin(), lead.end());
		shape.push_back((py::ssize_t)J);
		py::array_t<uint64_t> out(shape);
		Status st;
		{
			py::gil_scoped_release nogil;
			st = h->hashBatch(tokens, offsets, std::span<uint64_t>(out.mutable_data(), L * T * J), what, flags);
		}
		if (!st)
			throw LibError(st.code(), "hash: " + st.message());
		return out;
	}
};

// ---------------------------------------------------------------------------------
// PyAgent
// ---------------------------------------------------------------------------------
struct AgentState {
	ep_agent *agent = nullptr;
	bool closed = false;
	~AgentState() { ep_agent_destroy(&agent); }
};
using AgentRef = std::shared_ptr<AgentState>;

// A device-memory view for consumers of __cuda_array_interface__ (torch.as_tensor,
// cupy, numba). Keeps its owner alive.
struct CudaArray {
	uintptr_t ptr = 0;
	std::vector<py::ssize_t> shape, strides;
	std::string typestr = "|u1";
	bool readonly = true;
	py::object owner;

	py::dict iface() const
	{
		py::dict d;
		d["shape"] = py::tuple(py::cast(shape));
		d["strides"] = py::tuple(py::cast(strides));
		d["typestr"] = typestr;
		d["data"] = py::make_tuple(ptr, readonly);
		d["version"] = 3;
		d["stream"] = py::none();
		return d;
	}
};

struct PyAgent;

// Prefetches of fewer tokens keep the GIL (hashing them takes microseconds; see prefetch).
constexpr uint64_t kPrefetchNoGilTokens = 512;

struct PyTicket {
	std::shared_ptr<AgentState> state;
	PyAgent *owner = nullptr;  // valid while state is open (the Agent object outlives it)
	py::object agentObj;     // keeps the Agent object alive while the ticket lives
	uint64_t id = 0;
	uint32_t tokens = 0;
	bool released = false;

	ep_agent *live() const
	{
		if (released)
			raiseValue("ticket " + std::to_string(id) + " was released");
		if (!state || state->closed)
			raiseValue("agent is closed");
		return state->agent;
	}
	void wait(int layer) const;
	py::object output(uint32_t layer) const;
	py::array liveMask() const;
};

struct PyAgent {
	AgentRef state;
	std::string uri, modelPath, modelName;
	std::vector<uint32_t> layerIds;
	uint32_t columns = 0;
	int outFormat = EP_OUT_PACKED;
	bool cuda = false;
	RowShape shape; // the model's row format (from the model file)
	// lookup_into: a read-only pool handle of its own, opened on first use
	PoolRef pool;
	std::vector<std::string> tableNames;
	// Reused across prefetches: no allocation per step once grown.
	std::vector<ep_seq_tokens> entries;
	std::vector<const uint8_t *> deadPtrs;

	ep_agent *live() const
	{
		if (!state || state->closed)
			raiseValue("agent is closed");
		return state->agent;
	}

	PyAgent(const std::string &uri_, const std::string &model, const std::string &device, int cudaDevice,
	      uint32_t maxBatchTokens, uint32_t maxSequences, uint32_t slots, uint32_t gatherThreads, int numaNode,
	      uint64_t cacheRows, const py::object &hotSetFile, bool registerHost, const std::string &output,
	      bool nontemporal, bool tierAlways, bool waitHelps, bool dedupAlways)
	    : uri(uri_), modelPath(model)
	{
		if (device != "cpu" && device != "cuda")
			raiseValue("device: '" + device + "' is neither 'cpu' nor 'cuda'");
		cuda = device == "cuda";
		outFormat = parseFormat(output, "output");
		// "pool:NAME": the model the pool stores (record and token map), as the agent reads it.
		Result<ModelConfig> cfg = makeError(-EINVAL, "");
		if (model.rfind(kPoolModelPrefix, 0) == 0) {
			auto p = Pool::open(uri_, OpenOptions{});
			if (!p)
				throw LibError(p.code(), p.status().message());
			cfg = poolModelConfig(**p, model.substr(std::strlen(kPoolModelPrefix)));
		} else {
			cfg = loadModelFile(model);
		}
		if (!cfg)
			throw LibError(cfg.code(), "model '" + model + "': " + cfg.status().message());
		modelName = cfg->name;
		layerIds = cfg->layerIds;
		columns = cfg->headsPerLayer();
		const RowFormat &rf = cfg->rowFormat;
		(void)rf;
		for (uint32_t id : layerIds)
			tableNames.push_back(defaultTableName(modelName, id));

		ep_agent_config c;
		ep_agent_config_init(&c);
		std::string hot = hotSetFile.is_none() ? std::string() : hotSetFile.cast<std::string>();
		c.pool_uri = uri.c_str();
		c.model_path = modelPath.c_str();
		c.device = cuda ? EP_DEVICE_CUDA : EP_DEVICE_HOST;
		c.cuda_device = cudaDevice;
		if (maxBatchTokens) c.max_batch_tokens = maxBatchTokens;
		if (maxSequences) c.max_sequences = maxSequences;
		if (slots) c.slots = slots;
		if (gatherThreads) c.gather_threads = gatherThreads;
		c.numa_node = numaNode;
		c.cache_rows = cacheRows;
		c.hot_set_file = hot.empty() ? nullptr : hot.c_str();
		c.flags = (registerHost ? 0u : EP_AGENT_NO_REGISTER) | (nontemporal ? EP_AGENT_NONTEMPORAL : 0u) |
			  (tierAlways ? EP_AGENT_TIER_ALWAYS : 0u) | (waitHelps ? EP_AGENT_WAIT_HELPS : 0u) |
			  (dedupAlways ? EP_AGENT_DEDUP_ALWAYS : 0u) | EP_AGENT_OUT(outFormat);
		auto s = std::make_shared<AgentState>();
		int rc;
		{
			py::gil_scoped_release nogil;
			rc = ep_agent_create(&s->agent, &c);
		}
		if (rc)
			raiseLib(rc, "agent on '" + uri + "' with model '" + model + "'");
		state = std::move(s);
		// The table's row format, for output shapes and lookup_into.
		ep_table_info ti{};
		ensurePool();
		rc = ep_pool_find_table(pool->pool, tableNames[0].c_str(), &ti);
		if (rc)
			raiseLib(rc, "table '" + tableNames[0] + "'");
		shape = rowShape(ti);
	}

	void ensurePool()
	{
		if (pool)
			return;
		auto s = std::make_shared<PoolState>();
		s->uri = uri;
		int rc;
		{
			py::gil_scoped_release nogil;
			rc = ep_pool_open(&s->pool, uri.c_str(), EP_OPEN_READONLY);
		}
		if (rc)
			raiseLib(rc, "open '" + uri + "'");
		pool = std::move(s);
	}

	void close()
	{
		if (state)
			state->closed = true;
		state.reset();
		if (pool)
			pool->closed = true;
		pool.reset();
	}

	// Fast path: tokens int64 [B, T] C-contiguous (sequence b = row b), seq_ids [B]
	// 64-bit integers, flags None / int / integer array [B], dead None or [B, T] bool/uint8.
	// Slow path: batch is a list of (seq_id, tokens[, flags]).
	PyTicket prefetch(const py::object &self, const py::object &batch, const py::object &dead,
			const py::object &seqIds, const py::object &flags)
	{
		ep_agent *a = live();
		namespace pd = py::detail;
		py::list holders; // keeps converted arrays alive in the slow path
		size_t B = 0;
		const bool haveDead = !dead.is_none();
		if (py::isinstance<py::array>(batch)) {
			auto *ap = pd::array_proxy(batch.ptr());
			auto *dp = pd::array_descriptor_proxy(ap->descr);
			if (!(dp->kind == 'i' && dp->elsize == 8))
				raiseType("batch: expected int64 token ids");
			if (ap->nd != 2)
				raiseValue("batch: expected a [B, T] array (one row per sequence)");
			if (!(ap->flags & pd::npy_api::NPY_ARRAY_C_CONTIGUOUS_))
				raiseValue("batch: must be C-contiguous");
			B = (size_t)ap->dimensions[0];
			const size_t T = (size_t)ap->dimensions[1];
			if (B == 0 || T == 0)
				raiseValue("batch: empty");
			if (T > UINT32_MAX)
				raiseValue("batch: too many tokens per sequence");
			const int64_t *tok = reinterpret_cast<const int64_t *>(ap->data);
			entries.resize(B);
			// seq ids
			const uint8_t *sid = nullptr;
			if (!seqIds.is_none()) {
				if (!py::isinstance<py::array>(seqIds))
					raiseType("seq_ids: expected an int64/uint64 numpy array of B ids");
				auto *sp = pd::array_proxy(seqIds.ptr());
				auto *sd = pd::array_descriptor_proxy(sp->descr);
				if (!((sd->kind == 'i' || sd->kind == 'u') && sd->elsize == 8) || sp->nd != 1 ||
				    (size_t)sp->dimensions[0] != B || !(sp->flags & pd::npy_api::NPY_ARRAY_C_CONTIGUOUS_))
					raiseValue("seq_ids: expected a contiguous 1-D int64/uint64 array of " + std::to_string(B) +
						   " ids");
				sid = reinterpret_cast<const uint8_t *>(sp->data);
			}
			// flags
			uint32_t flagAll = 0;
			const uint8_t *fp = nullptr;
			int fsize = 0;
			if (!flags.is_none()) {
				if (py::isinstance<py::int_>(flags)) {
					long long f = flags.cast<long long>();
					if (f < 0 || f > (EP_SEQ_START | EP_SEQ_END))
						raiseValue("flags: expected SEQ_START, SEQ_END or both");
					flagAll = (uint32_t)f;
				} else if (py::isinstance<py::array>(flags)) {
					auto *fpp = pd::array_proxy(flags.ptr());
					auto *fd = pd::array_descriptor_proxy(fpp->descr);
					if (!((fd->kind == 'i' || fd->kind == 'u') && (fd->elsize == 1 || fd->elsize == 4 || fd->elsize == 8)) ||
					    fpp->nd != 1 || (size_t)fpp->dimensions[0] != B ||
					    !(fpp->flags & pd::npy_api::NPY_ARRAY_C_CONTIGUOUS_))
						raiseValue("flags: expected a contiguous 1-D integer array of " + std::to_string(B) + " flags");
					fp = reinterpret_cast<const uint8_t *>(fpp->data);
					fsize = fd->elsize;
				} else {
					raiseType("flags: expected an int or an integer array");
				}
			}
			for (size_t b = 0; b < B; b++) {
				ep_seq_tokens &e = entries[b];
				uint64_t s = b;
				if (sid)
					std::memcpy(&s, sid + 8 * b, 8);
				uint32_t f = flagAll;
				if (fp) {
					uint64_t v = 0;
					std::memcpy(&v, fp + fsize * b, fsize);
					if (v > (EP_SEQ_START | EP_SEQ_END))
						raiseValue("flags: entry " + std::to_string(b) + " is not a SEQ_* combination");
					f = (uint32_t)v;
				}
				e.seq_id = s;
				e.tokens = tok + b * T;
				e.count = (uint32_t)T;
				e.flags = f;
			}
			if (haveDead) {
				if (!py::isinstance<py::array>(dead))
					raiseType("dead: expected a [B, T] bool or uint8 array");
				auto *dp2 = pd::array_proxy(dead.ptr());
				auto *dd = pd::array_descriptor_proxy(dp2->descr);
				if (dd->elsize != 1 || (dd->kind != 'b' && dd->kind != 'u' && dd->kind != 'i'))
					raiseType("dead: expected bool or uint8 flags");
				if (dp2->nd != 2 || (size_t)dp2->dimensions[0] != B || (size_t)dp2->dimensions[1] != T ||
				    !(dp2->flags & pd::npy_api::NPY_ARRAY_C_CONTIGUOUS_))
					raiseValue("dead: expected a contiguous [B, T] array of the batch's shape");
				deadPtrs.resize(B);
				const uint8_t *d0 = reinterpret_cast<const uint8_t *>(dp2->data);
				for (size_t b = 0; b < B; b++)
					deadPtrs[b] = d0 + b * T;
			}
		} else {
			if (!seqIds.is_none() || !flags.is_none())
				raiseValue("seq_ids, flags: only with a [B, T] token array (a list batch carries them per entry)");
			if (!py::isinstance<py::sequence>(batch) || py::isinstance<py::str>(batch))
				raiseType("batch: expected a [B, T] int64 array or a list of (seq_id, tokens[, flags])");
			py::sequence seq = batch.cast<py::sequence>();
			B = (size_t)py::len(seq);
			if (B == 0)
				raiseValue("batch: empty");
			entries.resize(B);
			py::sequence deads;
			if (haveDead) {
				if (!py::isinstance<py::sequence>(dead))
					raiseType("dead: expected one flag array (or None) per batch entry");
				deads = dead.cast<py::sequence>();
				if ((size_t)py::len(deads) != B)
					raiseValue("dead: expected " + std::to_string(B) + " entries, one per batch entry");
				deadPtrs.assign(B, nullptr);
			}
			for (size_t b = 0; b < B; b++) {
				py::object item = seq[b];
				if (!py::isinstance<py::tuple>(item) && !py::isinstance<py::list>(item))
					raiseType("batch: entry " + std::to_string(b) + " is not a (seq_id, tokens[, flags]) tuple");
				py::sequence t = item.cast<py::sequence>();
				const size_t len = (size_t)py::len(t);
				if (len != 2 && len != 3)
					raiseValue("batch: entry " + std::to_string(b) + " needs (seq_id, tokens[, flags])");
				py::object sidObj = t[0];
				if (!py::isinstance<py::int_>(sidObj))
					raiseType("batch: entry " + std::to_string(b) + ": seq_id must be an int");
				py::int_ sidInt(sidObj);
				if (PyObject_RichCompareBool(sidInt.ptr(), py::int_(0).ptr(), Py_LT) == 1)
					raiseValue("batch: entry " + std::to_string(b) + ": seq_id must be >= 0");
				const uint64_t sidv = PyLong_AsUnsignedLongLong(sidInt.ptr());
				if (PyErr_Occurred()) {
					PyErr_Clear();
					raiseValue("batch: entry " + std::to_string(b) + ": seq_id does not fit in 64 bits");
				}
				py::array arr = py::array::ensure(t[1]);
				if (!arr || (arr.size() && arr.dtype().kind() != 'i' && arr.dtype().kind() != 'u'))
					raiseType("batch: entry " + std::to_string(b) + ": tokens must be integers");
				if (arr.ndim() > 1)
					raiseValue("batch: entry " + std::to_string(b) + ": tokens must be one-dimensional");
				py::array_t<int64_t, py::array::c_style | py::array::forcecast> tok(arr);
				holders.append(tok);
				uint32_t f = 0;
				if (len == 3) {
					long long fv = t[2].cast<long long>();
					if (fv < 0 || fv > (EP_SEQ_START | EP_SEQ_END))
						raiseValue("batch: entry " + std::to_string(b) + ": flags must be SEQ_START, SEQ_END or both");
					f = (uint32_t)fv;
				}
				entries[b] = ep_seq_tokens{sidv, tok.data(), (uint32_t)tok.size(), f};
				if (haveDead) {
					py::object d = deads[b];
					if (!d.is_none()) {
						py::array da = py::array::ensure(d);
						if (!da || (size_t)da.size() != (size_t)tok.size() || da.ndim() > 1)
							raiseValue("dead: entry " + std::to_string(b) + " needs " + std::to_string(tok.size()) +
								   " flags");
						py::array_t<uint8_t, py::array::c_style | py::array::forcecast> df(
							da.attr("astype")("bool"));
						holders.append(df);
						deadPtrs[b] = df.data();
					}
				}
			}
		}
		ep_prefetch_opts opts;
		ep_prefetch_opts_init(&opts);
		opts.dead = haveDead ? deadPtrs.data() : nullptr;
		uint64_t ticket = 0;
		uint64_t total = 0;
		for (size_t b = 0; b < B; b++)
			total += entries[b].count;
		int rc;
		if (total >= kPrefetchNoGilTokens) {
			py::gil_scoped_release nogil;
			rc = ep_agent_prefetch_ex(a, entries.data(), B, haveDead ? &opts : nullptr, &ticket);
		} else {
			// A decode step: prefetch hashes a few tokens and queues the gather, never
			// blocks; dropping the GIL would let another Python thread take it for up to
			// the switch interval (5 ms) before this call could return.
			rc = ep_agent_prefetch_ex(a, entries.data(), B, haveDead ? &opts : nullptr, &ticket);
		}
		if (rc)
			raisePrefetch(rc, B);
		PyTicket t;
		t.state = state;
		t.owner = this;
		t.agentObj = self;
		t.id = ticket;
		t.tokens = (uint32_t)total;
		return t;
	}

	// The data plane sets no message: say what the code means for this call.
	[[noreturn]] void raisePrefetch(int rc, size_t B) const
	{
		std::string why;
		switch (rc) {
		case EP_E_TOKEN: why = "a live token id is outside the model's vocabulary"; break;
		case -E2BIG: why = "the batch has more tokens or new sequences than the agent was created for"; break;
		case -EBUSY: why = "every staging slot holds an unreleased ticket (release tickets first)"; break;
		case -ENOENT: why = "a sequence without SEQ_START is not known to the agent"; break;
		case -EINVAL: why = "invalid batch (a sequence twice, or an empty batch)"; break;
		default: why = ep_strerror(rc);
		}
		throw LibError(rc, "prefetch of " + std::to_string(B) + " sequence(s): " + why);
	}

	void release(PyTicket &t)
	{
		if (t.state.get() != state.get() || t.owner != this)
			raiseValue("ticket: belongs to another agent");
		ep_agent *a = t.live();
		int rc = ep_agent_release(a, t.id);
		t.released = true;
		if (rc)
			raiseLib(rc, "release ticket " + std::to_string(t.id), false);
	}

	void endSequence(uint64_t seq)
	{
		ep_agent *a = live();
		int rc = ep_agent_end_sequence(a, seq);
		if (rc)
			raiseLib(rc, "end sequence " + std::to_string(seq), false);
	}

	std::string metricsText(int format) const
	{
		ep_agent *a = live();
		size_t need = 0;
		int rc = ep_agent_metrics(a, format, nullptr, 0, &need);
		if (rc && rc != -ENOSPC)
			raiseLib(rc, "metrics");
		std::string buf(need + 64, '\0');
		rc = ep_agent_metrics(a, format, buf.data(), buf.size(), &need);
		if (rc)
			raiseLib(rc, "metrics");
		buf.resize(need ? need - 1 : 0);
		return buf;
	}

	std::string lastError() const
	{
		ep_agent *a = live();
		return ep_agent_last_error(a);
	}

	// lookup_into: rows of Engram layer `layer` (index in layer_ids order) read with
	// ep_pool_read_rows_as into out (numpy, C-contiguous, writable, exactly the bytes).
	void lookupInto(uint32_t layer, const py::object &rowIds, const py::object &out, const py::object &format)
	{
		live();
		if (layer >= layerIds.size())
			raiseValue("layer: index " + std::to_string(layer) + " out of range (the model has " +
				   std::to_string(layerIds.size()) + " Engram layers)");
		if (!py::isinstance<py::array>(out))
			raiseType("out: expected a numpy array (or a CPU torch tensor)");
		py::array o = out;
		if (!(o.flags() & py::array::c_style))
			raiseValue("out: must be C-contiguous");
		if (!o.writeable())
			raiseValue("out: is read-only");
		int fmt;
		if (format.is_none()) {
			const char k = o.dtype().kind();
			if (k == 'f' && o.itemsize() == 4)
				fmt = EP_OUT_F32;
			else
				fmt = EP_OUT_PACKED;
		} else {
			fmt = parseFormat(format.cast<std::string>(), "format");
		}
		if ((fmt == EP_OUT_SCALES || fmt == EP_OUT_PLANES) && !shape.scales)
			raiseValue("format: the model's rows have no scales");
		if (fmt == EP_OUT_F32 && !(o.dtype().kind() == 'f' && o.itemsize() == 4))
			raiseTypeMsg("out: format f32 needs a float32 array, got " + py::str(o.dtype()).cast<std::string>());
		py::array_t<uint64_t> ids = rowIdArray(rowIds, "row_ids");
		const size_t n = (size_t)ids.size();
		const uint64_t need = n * shape.bytesPerRow(fmt);
		if ((uint64_t)o.nbytes() != need)
			raiseValue("out: needs " + std::to_string(need) + " bytes (" + std::to_string(n) + " rows of " +
				   std::to_string(shape.bytesPerRow(fmt)) + "), has " + std::to_string(o.nbytes()));
		PoolRef p = pool;
		if (!p || p->closed)
			raiseValue("agent is closed");
		const std::string &name = tableNames[layer];
		const uint64_t *ip = ids.data();
		void *dst = o.mutable_data();
		int rc;
		{
			py::gil_scoped_release nogil;
			rc = ep_pool_read_rows_as(p->pool, name.c_str(), ip, n, fmt, dst, (size_t)need);
		}
		if (rc)
			raiseLib(rc, "lookup_into layer " + std::to_string(layerIds[layer]) + " ('" + name + "')");
	}
	[[noreturn]] static void raiseTypeMsg(const std::string &m) { raiseType(m); }
};

void PyTicket::wait(int layer) const
{
	ep_agent *a = live();
	if (layer < -1 || (owner && layer >= (int)owner->layerIds.size()))
		raiseValue("layer: index " + std::to_string(layer) + " out of range");
	int rc;
	{
		py::gil_scoped_release nogil;
		rc = ep_agent_wait(a, id, layer);
	}
	if (rc) {
		std::string why = ep_agent_last_error(a);
		throw LibError(rc, "ticket " + std::to_string(id) + " layer " + std::to_string(layer) + ": " +
					   (why.empty() ? std::string(ep_strerror(rc)) : why));
	}
}

py::array PyTicket::liveMask() const
{
	ep_agent *a = live();
	py::array_t<uint8_t> m((py::ssize_t)tokens);
	size_t n = 0;
	int rc = ep_agent_live_mask(a, id, m.mutable_data(), tokens, &n);
	if (rc)
		raiseLib(rc, "live mask of ticket " + std::to_string(id), false);
	return m.attr("astype")("bool");
}

py::object PyTicket::output(uint32_t layer) const
{
	wait((int)layer);
	ep_agent *a = live();
	ep_layer_output o{};
	int rc = ep_agent_output(a, id, layer, &o);
	if (rc)
		raiseLib(rc, "output of ticket " + std::to_string(id) + " layer " + std::to_string(layer), false);
	const PyAgent &ag = *owner;
	if ((int)o.format != ag.outFormat)
		throw LibError(EP_E_UNSUPPORTED, "output: the agent was asked for format " + std::to_string(ag.outFormat) +
							 " but this libengrampool produced format " + std::to_string(o.format));
	const py::ssize_t T = o.tokens, C = o.columns, S = o.row_stride;
	py::dtype dt("uint8");
	py::ssize_t item = 1, width = o.row_bytes;
	if (o.format == EP_OUT_F32) {
		dt = py::dtype("float32");
		item = 4;
	} else if (o.format == EP_OUT_BF16) {
		dt = py::dtype("uint16");
		item = 2;
	}
	width /= item;
	if (o.format == EP_OUT_PLANES) {
		// (values [T, C, value bytes], scales [T, C, scale bytes]): the scales plane starts
		// after the T*C values rows; both exact pitch, uint8.
		const py::ssize_t sb = (py::ssize_t)ag.shape.bytesPerRow(EP_OUT_SCALES);
		const uint8_t *sp = static_cast<const uint8_t *>(o.rows) + (size_t)T * C * S;
		if (ag.cuda) {
			CudaArray v, sc;
			v.ptr = (uintptr_t)o.rows;
			v.shape = {T, C, width};
			v.strides = {C * S, S, 1};
			v.typestr = "|u1";
			v.owner = keepAlive(state);
			sc.ptr = (uintptr_t)sp;
			sc.shape = {T, C, sb};
			sc.strides = {C * sb, sb, 1};
			sc.typestr = "|u1";
			sc.owner = keepAlive(state);
			return py::make_tuple(py::cast(std::move(v)), py::cast(std::move(sc)));
		}
		return py::make_tuple(viewArray(o.rows, dt, {T, C, width}, {C * S, S, 1}, keepAlive(state), true),
				      viewArray(sp, dt, {T, C, sb}, {C * sb, sb, 1}, keepAlive(state), true));
	}
	if (ag.cuda) {
		CudaArray c;
		c.ptr = (uintptr_t)o.rows;
		c.shape = {T, C, width};
		c.strides = {C * S, S, item};
		c.typestr = o.format == EP_OUT_F32 ? "<f4" : o.format == EP_OUT_BF16 ? "<u2" : "|u1";
		c.owner = keepAlive(state);
		return py::cast(std::move(c));
	}
	return viewArray(o.rows, dt, {T, C, width}, {C * S, S, item}, keepAlive(state), true);
}

// ---------------------------------------------------------------------------------
// CUDA host registration (lib/device: chunks of 1 GiB, every error cleared)
// ---------------------------------------------------------------------------------
struct CudaRegistration {
	std::shared_ptr<cuda::HostRegistration> reg;
	py::list chunks() const
	{
		py::list l;
		if (reg)
			for (const auto &c : reg->chunks())
				l.append(py::make_tuple((uintptr_t)c.addr, c.len, (uintptr_t)c.devicePtr));
		return l;
	}
	void close()
	{
		if (reg) {
			py::gil_scoped_release nogil;
			reg->reset();
		}
		reg.reset();
	}
};

CudaRegistration cudaRegister(uintptr_t ptr, size_t len, unsigned flags)
{
	if (!ptr || !len)
		raiseValue("register_cuda: empty range");
	Result<cuda::HostRegistration> r = makeError(-EIO, "not run");
	{
		py::gil_scoped_release nogil;
		r = cuda::registerHost(reinterpret_cast<void *>(ptr), len, flags);
	}
	if (!r)
		throw LibError(r.code(), r.status().message());
	CudaRegistration c;
	c.reg = std::make_shared<cuda::HostRegistration>(std::move(r.value()));
	return c;
}

// ---------------------------------------------------------------------------------
// Benchmark helpers: the same calls timed in C++ (no Python in the loop)
// ---------------------------------------------------------------------------------
// A decode step's calls (prefetch + wait(all) + release) looped in C++ over tokens [B]
// (one token per sequence per step). seq_ids: the caller's sequences (already started,
// left running: the Python loop's own), or None: fresh sequences started and ended here.
// gap_ns: busy time between steps (a stand-in for the caller's own work per step).
// Returns seconds per step, or with parts=True (step, prefetch, wait, release) seconds.
py::object benchPrefetchCpp(PyAgent &ag, const py::array_t<int64_t, py::array::c_style> &tokens, size_t iters,
			    const py::object &seqIds, bool parts, uint64_t gapNs)
{
	ep_agent *a = ag.live();
	const size_t B = (size_t)tokens.size();
	std::vector<ep_seq_tokens> e(B);
	const bool own = seqIds.is_none();
	py::array_t<uint64_t, py::array::c_style | py::array::forcecast> sids;
	if (!own) {
		sids = py::array_t<uint64_t, py::array::c_style | py::array::forcecast>(seqIds);
		if ((size_t)sids.size() != B)
			raiseValue("seq_ids: expected " + std::to_string(B) + " ids");
	}
	for (size_t b = 0; b < B; b++)
		e[b] = ep_seq_tokens{own ? 1000000 + b : sids.data()[b], tokens.data() + b, 1, 0};
	double tp = 0, tw = 0, tr = 0, step = 0;
	bool failed = false;
	{
		py::gil_scoped_release nogil;
		uint64_t t = 0;
		if (own) { // start the sequences
			for (auto &x : e)
				x.flags = EP_SEQ_START;
			if (ep_agent_prefetch(a, e.data(), B, &t) == 0) {
				ep_agent_wait(a, t, -1);
				ep_agent_release(a, t);
			}
			for (auto &x : e)
				x.flags = 0;
		}
		using clk = std::chrono::steady_clock;
		auto t0 = clk::now();
		if (parts) {
			clk::duration dp{}, dw{}, dr{};
			for (size_t i = 0; i < iters; i++) {
				auto a0 = clk::now();
				if (ep_agent_prefetch(a, e.data(), B, &t)) {
					failed = true;
					break;
				}
				auto a1 = clk::now();
				ep_agent_wait(a, t, -1);
				auto a2 = clk::now();
				ep_agent_release(a, t);
				auto a3 = clk::now();
				dp += a1 - a0;
				dw += a2 - a1;
				dr += a3 - a2;
			}
			tp = std::chrono::duration<double>(dp).count() / (double)iters;
			tw = std::chrono::duration<double>(dw).count() / (double)iters;
			tr = std::chrono::duration<double>(dr).count() / (double)iters;
		} else {
			for (size_t i = 0; i < iters; i++) {
				if (gapNs) { // stand-in for a caller's work between steps
					auto g0 = clk::now();
					while ((uint64_t)std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now() - g0).count() <
					       gapNs)
						;
				}
				if (ep_agent_prefetch(a, e.data(), B, &t)) {
					failed = true;
					break;
				}
				ep_agent_wait(a, t, -1);
				ep_agent_release(a, t);
			}
		}
		auto t1 = clk::now();
		step = std::chrono::duration<double>(t1 - t0).count() / (double)iters;
		if (own) {
			for (auto &x : e) {
				x.flags = EP_SEQ_END;
				x.count = 0;
			}
			if (ep_agent_prefetch(a, e.data(), B, &t) == 0) {
				ep_agent_wait(a, t, -1);
				ep_agent_release(a, t);
			}
		}
	}
	if (failed)
		step = -1;
	if (parts)
		return py::make_tuple(step, tp, tw, tr);
	return py::float_(step);
}

double benchReadRowsCpp(PyPool &p, const std::string &table, const py::array_t<uint64_t, py::array::c_style> &ids,
			int fmt, size_t bytes, size_t iters)
{
	ep_pool *pp = livePool(p.state);
	std::vector<uint8_t> buf(bytes);
	py::gil_scoped_release nogil;
	auto t0 = std::chrono::steady_clock::now();
	for (size_t i = 0; i < iters; i++)
		if (ep_pool_read_rows_as(pp, table.c_str(), ids.data(), (size_t)ids.size(), fmt, buf.data(), bytes))
			return -1;
	auto t1 = std::chrono::steady_clock::now();
	return std::chrono::duration<double>(t1 - t0).count() / (double)iters;
}

} // namespace

PYBIND11_MODULE(_engrampool, m)
{
	m.doc() = "engrampool: Engram tables in a shared CXL/DAX memory pool (C extension)";

	static py::exception<LibError> err(m, "Error", PyExc_RuntimeError);
	g_error = err.ptr();
	py::register_exception_translator([](std::exception_ptr p) {
		try {
			if (p)
				std::rethrow_exception(p);
		} catch (const LibError &e) {
			py::object inst = py::reinterpret_borrow<py::object>(g_error)(e.msg);
			inst.attr("code") = e.code;
			PyErr_SetObject(g_error, inst.ptr());
		}
	});

	m.attr("SEQ_START") = (int)EP_SEQ_START;
	m.attr("SEQ_END") = (int)EP_SEQ_END;
	m.attr("CUDA_REGISTER_PORTABLE") = cuda::kRegisterPortable;
	m.attr("CUDA_REGISTER_MAPPED") = cuda::kRegisterMapped;
	m.attr("CUDA_REGISTER_READ_ONLY") = cuda::kRegisterReadOnly;
	m.def("version", [] { return std::string(ep_version()); });
	m.def("strerror", [](int code) { return std::string(ep_strerror(code)); });

	m.def("create_pool", [](const std::string &uri, uint64_t size) {
		int rc;
		{
			py::gil_scoped_release nogil;
			rc = ep_pool_create(uri.c_str(), size);
		}
		if (rc)
			raiseLib(rc, "create '" + uri + "'");
	}, py::arg("uri"), py::arg("size"));

	py::class_<PyTable>(m, "Table")
		.def_property_readonly("name", &PyTable::name)
		.def_property_readonly("layer", [](const PyTable &t) { return t.info.layer_id; })
		.def_property_readonly("num_rows", [](const PyTable &t) { return t.info.rows; })
		.def_property_readonly("dtype", [](const PyTable &t) { return std::string(dtypeName(t.info.dtype)); })
		.def_property_readonly("layout", [](const PyTable &t) {
			return std::string(t.info.layout == EP_LAYOUT_PLANAR ? "planar" : "packed");
		})
		.def_property_readonly("model", [](const PyTable &t) { return std::string(t.info.model); })
		.def_property_readonly("row_bytes", [](const PyTable &t) { return t.info.row_bytes; })
		.def_property_readonly("row_stride", [](const PyTable &t) { return t.info.row_stride; })
		.def_property_readonly("values_per_row", [](const PyTable &t) { return t.info.values_per_row; })
		.def_property_readonly("scales_per_row", [](const PyTable &t) {
			return t.info.scale_dtype == EP_DTYPE_NONE ? 0u : t.info.scales_per_row;
		})
		.def_property_readonly("info", [](const PyTable &t) { return tableDict(t.info); })
		.def("planes", &PyTable::planes, py::arg("h0") = py::none(), py::arg("h1") = py::none(),
		     "(values, scales): read-only zero-copy arrays over the pool mapping for heads [h0, h1)")
		.def("planes_info", &PyTable::planesInfo, py::arg("h0") = py::none(), py::arg("h1") = py::none())
		.def("read_rows", &PyTable::rows, py::arg("ids"), py::arg("format") = "packed")
		.def("__repr__", [](const PyTable &t) {
			return "<engrampool.Table '" + t.name() + "' layer " + std::to_string(t.info.layer_id) + ", " +
			       std::to_string(t.info.rows) + " rows of " + dtypeName(t.info.dtype) + ">";
		});

	py::class_<PyPool>(m, "Pool")
		.def(py::init<const std::string &, bool>(), py::arg("uri"), py::arg("write") = false)
		.def("tables", &PyPool::tables)
		.def("table", &PyPool::table, py::arg("name"))
		.def("stat", &PyPool::stat)
		.def("token_map", &PyPool::tokenMap, py::arg("model"))
		.def("hosts", &PyPool::hosts)
		.def("close", &PyPool::close)
		.def_property_readonly("closed", &PyPool::closed)
		.def_property_readonly("uri", [](const PyPool &p) { return p.state ? p.state->uri : std::string(); })
		.def("__enter__", [](py::object self) { return self; })
		.def("__exit__", [](PyPool &p, py::args) { p.close(); return false; });

	py::class_<PyHasher>(m, "Hasher")
		.def(py::init<const std::string &>(), py::arg("model"))
		.def_property_readonly("layer_ids", &PyHasher::layerIds)
		.def_property_readonly("columns", [](const PyHasher &h) { return h.h->columns(); })
		.def("hash", &PyHasher::hash, py::arg("batch"), py::arg("dead") = py::none(), py::arg("kind") = "rows");

	py::class_<CudaArray>(m, "CudaArray")
		.def_property_readonly("__cuda_array_interface__", &CudaArray::iface)
		.def_property_readonly("shape", [](const CudaArray &c) { return py::tuple(py::cast(c.shape)); })
		.def_property_readonly("ptr", [](const CudaArray &c) { return c.ptr; });
	m.def("_cuda_array", [](uintptr_t ptr, std::vector<py::ssize_t> shape, std::vector<py::ssize_t> strides,
				std::string typestr, py::object owner) {
		if (shape.size() != strides.size())
			raiseValue("shape and strides differ in length");
		CudaArray c;
		c.ptr = ptr;
		c.shape = std::move(shape);
		c.strides = std::move(strides);
		c.typestr = std::move(typestr);
		c.owner = std::move(owner);
		return c;
	});

	py::class_<PyTicket>(m, "Ticket")
		.def_readonly("id", &PyTicket::id)
		.def_readonly("tokens", &PyTicket::tokens)
		.def_readonly("released", &PyTicket::released)
		.def("wait", &PyTicket::wait, py::arg("layer") = -1)
		.def("output", &PyTicket::output, py::arg("layer"),
		     "rows of layer (index in layer_ids order) in the staging slot, zero-copy: valid until release")
		.def("live_mask", &PyTicket::liveMask);

	py::class_<PyAgent>(m, "Agent")
		.def(py::init<const std::string &, const std::string &, const std::string &, int, uint32_t, uint32_t,
			      uint32_t, uint32_t, int, uint64_t, const py::object &, bool, const std::string &, bool, bool, bool,
			      bool>(),
		     py::arg("uri"), py::arg("model"), py::arg("device") = "cpu", py::arg("cuda_device") = 0,
		     py::arg("max_batch_tokens") = 0, py::arg("max_sequences") = 0, py::arg("slots") = 0,
		     py::arg("gather_threads") = 0, py::arg("numa_node") = -1, py::arg("cache_rows") = 0,
		     py::arg("hot_set_file") = py::none(), py::arg("register") = true, py::arg("output") = "packed",
		     py::arg("nontemporal") = false, py::arg("tier_always") = false, py::arg("wait_helps") = false,
		     py::arg("dedup_always") = false)
		.def("prefetch", [](py::object self, const py::object &batch, const py::object &dead, const py::object &seqIds,
				    const py::object &flags) {
			return self.cast<PyAgent &>().prefetch(self, batch, dead, seqIds, flags);
		}, py::arg("batch"), py::arg("dead") = py::none(), py::arg("seq_ids") = py::none(), py::arg("flags") = py::none())
		.def("release", &PyAgent::release, py::arg("ticket"))
		.def("end_sequence", &PyAgent::endSequence, py::arg("seq_id"))
		.def("metrics_text", &PyAgent::metricsText, py::arg("format") = 0)
		.def("last_error", &PyAgent::lastError)
		.def("_lookup_into", &PyAgent::lookupInto, py::arg("layer"), py::arg("row_ids"), py::arg("out"),
		     py::arg("format") = py::none())
		.def("close", &PyAgent::close)
		.def_property_readonly("closed", [](const PyAgent &a) { return !a.state; })
		.def_readonly("layer_ids", &PyAgent::layerIds)
		.def_readonly("columns", &PyAgent::columns)
		.def_readonly("model_name", &PyAgent::modelName)
		.def_readonly("uri", &PyAgent::uri)
		.def_property_readonly("device", [](const PyAgent &a) { return std::string(a.cuda ? "cuda" : "cpu"); })
		.def_property_readonly("output_format", [](const PyAgent &a) {
			static const char *n[] = {"packed", "values", "scales", "f32", "bf16", "planes"};
			return std::string(n[a.outFormat]);
		})
		.def_property_readonly("row_format", [](const PyAgent &a) {
			py::dict d;
			d["dtype"] = dtypeName(a.shape.dtype);
			d["values_per_row"] = a.shape.values;
			d["scale_dtype"] = dtypeName(a.shape.scaleDtype);
			d["scales_per_row"] = a.shape.scales;
			d["row_bytes"] = a.shape.rowBytes;
			return d;
		})
		.def("__enter__", [](py::object self) { return self; })
		.def("__exit__", [](PyAgent &a, py::args) { a.close(); return false; });

	py::class_<CudaRegistration>(m, "_CudaRegistration")
		.def_property_readonly("chunks", &CudaRegistration::chunks)
		.def("close", &CudaRegistration::close);
	m.def("_cuda_register", &cudaRegister, py::arg("ptr"), py::arg("nbytes"), py::arg("flags"));
	m.def("cuda_probe", [] {
		auto p = cuda::probe();
		py::dict d;
		d["built"] = p.built;
		d["usable"] = p.usable;
		d["reason"] = p.reason;
		d["devices"] = p.devices.size();
		return d;
	});

	m.def("_bench_prefetch_cpp", &benchPrefetchCpp, py::arg("agent"), py::arg("tokens"), py::arg("iters"),
	      py::arg("seq_ids") = py::none(), py::arg("parts") = false, py::arg("gap_ns") = 0);
	m.def("_bench_read_rows_cpp", &benchReadRowsCpp, py::arg("pool"), py::arg("table"), py::arg("ids"),
	      py::arg("format"), py::arg("bytes"), py::arg("iters"));
}
