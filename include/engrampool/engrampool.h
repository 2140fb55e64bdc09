/* SPDX-License-Identifier: Apache-2.0 */
/* engrampool.h - the C ABI of libengrampool (compiles as C11 and as C++). */
#ifndef ENGRAMPOOL_H
#define ENGRAMPOOL_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define EP_API __attribute__((visibility("default")))
#else
#define EP_API
#endif

#ifdef __cplusplus
#define EP_NOEXCEPT noexcept
extern "C" {
#else
#define EP_NOEXCEPT
#endif

/*
 * Errors. Every function returns 0 on success, a negative errno passed through
 * (e.g. -ENOENT, -ENOSPC, -EINVAL, -EBUSY), or a code in the library range below;
 * never a positive value. Control-plane calls also leave a one-line message for the
 * calling thread, read with ep_errormsg() (cleared by a control-plane call that
 * succeeds); ep_strerror() names a code. The message is per thread: threads never see
 * each other's, and the pointer stays valid until the same thread's next call into
 * the library. No C++ exception crosses this ABI: one that escapes inside the library
 * becomes -ENOMEM (out of memory), -errno (a system error) or -EIO (an internal error),
 * with the message set.
 */
enum ep_error {
	EP_E_BASE = -10000,
	EP_E_CORRUPT = -10001,      /* a pool structure failed validation (CRC, bounds) */
	EP_E_VERSION = -10002,      /* pool format version not supported */
	EP_E_NOT_POOL = -10003,     /* region holds no engrampool superblock */
	EP_E_CHECKSUM = -10004,     /* table data does not match its stored checksum */
	EP_E_MODEL = -10005,        /* model file invalid, or does not match the pool */
	EP_E_NOT_MASTER = -10006,   /* this host is not the pool's master (writer) */
	EP_E_STALE_EPOCH = -10007,  /* mastership moved while this writer worked */
	EP_E_SHAPE = -10008,        /* import source has the wrong shape or dtype */
	EP_E_URI = -10009,          /* malformed or unknown region URI */
	EP_E_PREFLIGHT = -10010,    /* backing store cannot hold the pool */
	EP_E_UNSUPPORTED = -10011,  /* feature not built in, or not available here */
	EP_E_RETRY = -10012,        /* concurrent writer kept changing the catalog */
	EP_E_TOKEN = -10013,        /* token id outside the vocabulary */
};

/* Open flags. */
#define EP_OPEN_READONLY 0u   /* map read-only, never write the pool */
#define EP_OPEN_WRITE 1u      /* become the (single) writer: takes the writer lock */

typedef struct ep_pool ep_pool;

typedef struct ep_pool_info {
	uint8_t uuid[16];
	uint64_t size;            /* bytes of the pool */
	uint64_t align_unit;      /* allocation unit of the data area (2 MiB) */
	uint64_t data_offset;     /* start of the data area */
	uint64_t data_bytes;      /* size of the data area */
	uint64_t used_bytes;      /* data area bytes held by tables (incl. not yet reclaimed) */
	uint64_t generation;      /* committed generation */
	uint64_t master_epoch;
	uint32_t format_major, format_minor;
	uint32_t tables;          /* visible tables */
	uint32_t models;          /* visible models */
	uint32_t catalog_slots;
	uint32_t host_slots;
} ep_pool_info;

typedef struct ep_table_info {
	char name[64];
	char model[64];
	uint64_t model_fingerprint;
	uint32_t layer_id;
	uint32_t dtype;           /* enum ep_dtype */
	uint32_t values_per_row;
	uint32_t scale_dtype;     /* enum ep_dtype, EP_DTYPE_NONE without a scale block */
	uint32_t scales_per_row;
	uint32_t row_bytes;       /* packed bytes of one row */
	uint32_t row_stride;      /* packed: bytes between rows (row_bytes unless padding was
	                           * asked); planar: values_per_row (the values plane's pitch) */
	uint32_t layout;          /* enum ep_layout (was `reserved`, always 0 = packed before) */
	uint64_t rows;
	uint64_t data_offset;     /* offset of row 0 in the pool (planar: of the values plane) */
	uint64_t data_bytes;      /* packed: rows * row_stride; planar: both planes' bytes */
	uint64_t data_xxh3;       /* XXH3-64 of the data bytes (planar: the values plane's bytes
	                           * then the scales plane's, as one stream) */
	uint64_t generation;      /* generation that published the table */
} ep_table_info;

enum ep_dtype {
	EP_DTYPE_NONE = 0,
	EP_DTYPE_FP32 = 1,
	EP_DTYPE_BF16 = 2,
	EP_DTYPE_FP16 = 3,
	EP_DTYPE_FP8_E4M3 = 4,
	EP_DTYPE_E8M0 = 5,        /* power-of-two scale byte (MX scales) */
};

/*
 * How a table's rows sit in the pool (ep_table_info.layout).
 * PACKED: row r at data_offset + r * row_stride: its values, then its scales.
 * PLANAR (scaled formats only): a values plane [rows][values_per_row] with exact pitch
 * at data_offset, then a scales plane [rows][scales_per_row] with exact pitch starting
 * at the first 2 MiB boundary after the values plane, both inside the table's extent.
 */
enum ep_layout { EP_LAYOUT_PACKED = 0, EP_LAYOUT_PLANAR = 1 };

/*
 * A table's rows as planes, for servers that read the pool in place (e.g. a lookup
 * kernel that takes a values tensor and a scales tensor with row pitches). Pointers are
 * into the pool's mapping of this ep_pool and stay valid while it is open and the
 * table is not removed (a removed table's space is reused once no host reads it).
 * For a packed table the planes are strided views of the packed rows: values_pitch ==
 * scales_pitch == row_stride and scales == values + values_bytes.
 */
typedef struct ep_table_planes {
	const void *values; uint64_t values_pitch;  /* row_begin's values; bytes between rows */
	const void *scales; uint64_t scales_pitch;  /* row_begin's scales; NULL without scales */
	uint64_t row_begin, row_end;                /* rows [offset[h0], offset[h1]) */
	uint32_t layout, values_bytes, scales_bytes, reserved; /* bytes per row of each part */
} ep_table_planes;

/* Plane pointers of table `name` for the hash heads [h0, h1) of its layer. A layer's
 * table is its (max_ngram_size-1) * n_head_per_ngram per-head sub-tables (one prime size
 * each, taken from the pool's record of the table's model) laid end to end; offset[h] is
 * the sum of the primes of heads < h. h0 <= h1 <= heads; h0 == h1 == 0 means all heads
 * (an empty range elsewhere is allowed: row_begin == row_end). -EINVAL: bad range;
 * -ENOENT: no such table; EP_E_MODEL: the table's model record is missing or its primes
 * do not add up to the table's rows. */
EP_API int ep_pool_table_planes(ep_pool *pool, const char *name, uint32_t h0, uint32_t h1,
				ep_table_planes *out) EP_NOEXCEPT;

/* Output formats of ep_pool_read_rows_as (and of the agent, EP_AGENT_OUT()). For n rows
 * of D values and S = D/32 scales:
 *   PACKED  n * row_bytes: each row's values then its scales (ep_pool_read_rows);
 *   VALUES  n * D * value size: the values part of each row;
 *   SCALES  n * S bytes: the scales part of each row (needs a scaled format);
 *   F32     n * D floats: dequantized (fp8-e4m3 value * 2^(e8m0 - 127) per block of 32;
 *           unscaled formats widened);
 *   BF16    n * D bfloat16 (round to nearest even) of the same numbers;
 *   PLANES  the VALUES rows, then the SCALES rows (n * (D + S) bytes for fp8). */
enum ep_row_format_out { EP_OUT_PACKED = 0, EP_OUT_VALUES = 1, EP_OUT_SCALES = 2,
			 EP_OUT_F32 = 3, EP_OUT_BF16 = 4, EP_OUT_PLANES = 5 };

EP_API const char *ep_strerror(int code) EP_NOEXCEPT;
EP_API const char *ep_errormsg(void) EP_NOEXCEPT;
EP_API const char *ep_version(void) EP_NOEXCEPT;

/* Format URI (file:/path, dax:/dev/daxX.Y, emul:NAME?node=N) as an empty pool of size bytes. */
EP_API int ep_pool_create(const char *uri, uint64_t size) EP_NOEXCEPT;
/* Open a pool. *out is set only on success. */
EP_API int ep_pool_open(ep_pool **out, const char *uri, unsigned flags) EP_NOEXCEPT;
/* Close and set *pool to NULL (NULL-safe). */
EP_API void ep_pool_close(ep_pool **pool) EP_NOEXCEPT;

EP_API int ep_pool_info_get(ep_pool *pool, ep_pool_info *info) EP_NOEXCEPT;
/* Copy up to cap visible tables into out; *count receives the total number. */
EP_API int ep_pool_list_tables(ep_pool *pool, ep_table_info *out, size_t cap, size_t *count) EP_NOEXCEPT;
EP_API int ep_pool_find_table(ep_pool *pool, const char *name, ep_table_info *out) EP_NOEXCEPT;
/* Copy rows[i] of table `name` to dst + i * row_bytes. Ids are bounds-checked. */
EP_API int ep_pool_read_rows(ep_pool *pool, const char *name, const uint64_t *rows, size_t n,
			     void *dst, size_t dst_bytes) EP_NOEXCEPT;
/* Copy rows[i] of table `name` (either layout) to dst in out_format (enum
 * ep_row_format_out). -ENOSPC when dst_bytes is smaller than the output; -EINVAL for
 * an unknown format or SCALES/PLANES of an unscaled table. */
EP_API int ep_pool_read_rows_as(ep_pool *pool, const char *name, const uint64_t *rows, size_t n,
				int out_format, void *dst, size_t dst_bytes) EP_NOEXCEPT;
/* Recompute checksums of one table (name) or all (NULL). Returns 0 when every table
 * checked is good; EP_E_CHECKSUM when at least one is bad (the message names each bad
 * table and its problem; *bad_tables, when not NULL, receives how many); -ENOENT when
 * `name` is no table; another negative code when the check could not run. *bad_tables
 * is 0 unless EP_E_CHECKSUM is returned. */
EP_API int ep_pool_verify_tables(ep_pool *pool, const char *name, size_t *bad_tables) EP_NOEXCEPT;
/* ep_pool_verify_tables(pool, name, NULL). (It used to return the number of bad tables
 * as a positive value; it now follows the 0-or-negative rule: EP_E_CHECKSUM.) */
EP_API int ep_pool_verify(ep_pool *pool, const char *name) EP_NOEXCEPT;
/* Remove a table (needs EP_OPEN_WRITE). Its space is reused once no host can still read it. */
EP_API int ep_pool_remove_table(ep_pool *pool, const char *name) EP_NOEXCEPT;
/* The token map (raw token id -> compressed id, tokenizer_vocab_size entries) that the
 * pool stores for model `model` (pool format 1.1), so a host can hash tokens with what
 * the pool holds. Copies min(cap, entries) ids into out (NULL allowed with cap 0: a
 * size query); *count receives the number of entries. Every call reads the whole map
 * and checks it against the model record (XXH3, ids within the compressed vocabulary).
 * -ENOENT: no such model, or it stores no map (an identity vocabulary, or a model
 * published by a format 1.0 build; the message says which); EP_E_CORRUPT: the model is
 * quarantined or its stored map is damaged (the message names the model); -EINVAL:
 * pool, model or count NULL, or out NULL with cap > 0. */
EP_API int ep_pool_model_token_map(ep_pool *pool, const char *model, int64_t *out, size_t cap,
				   size_t *count) EP_NOEXCEPT;

/* ---------------------------------------------------------------------------------
 * The per-host agent: per step, hand it the new token ids of a batch; before each
 * Engram layer runs, wait on the ticket (or its CUDA event) and read the layer's rows
 * from device memory. Data-plane calls (prefetch, wait, output, event, release)
 * return codes only and never format text; ep_agent_last_error() explains a failed
 * ticket.
 * --------------------------------------------------------------------------------- */
typedef struct ep_agent ep_agent;

enum ep_device_kind { EP_DEVICE_HOST = 0, EP_DEVICE_CUDA = 1 };

typedef struct ep_agent_config {
	const char *pool_uri;       /* required */
	const char *model_path;     /* required: MODEL.json, or "pool:NAME" for the model record and
				       token map the pool stores ("pool:" = its only model) */
	int device;                 /* enum ep_device_kind */
	int cuda_device;
	uint32_t max_batch_tokens;  /* tokens per prefetch (default 2048) */
	uint32_t max_sequences;     /* live sequences (default 4096) */
	uint32_t slots;             /* staging ring depth (default 3) */
	uint32_t gather_threads;    /* incl. the pipeline thread (default 1) */
	int numa_node;              /* -1: near the GPU / anywhere */
	uint64_t cache_rows;        /* hot-row tier capacity, 0 = off */
	const char *hot_set_file;   /* optional frequency file "LAYER ROW COUNT" */
	int host_index;             /* host slot; -1 = first free */
	uint32_t flags;             /* EP_AGENT_* */
} ep_agent_config;

#define EP_AGENT_NO_REGISTER 1u    /* do not claim a host slot (tools, tests) */
#define EP_AGENT_NO_ADMIT 2u       /* hot-row tier holds only the static hot set */
#define EP_AGENT_NONTEMPORAL 4u    /* streaming stores into staging */
#define EP_AGENT_TIER_ALWAYS 8u    /* use the hot-row tier on every step, even where it is measured
                                    * to cost more than it saves (default: bypassed then, host device) */
#define EP_AGENT_WAIT_HELPS 16u    /* a thread in ep_agent_wait copies rows with the gather threads
                                    * while it waits (default: it only waits for them) */
#define EP_AGENT_DEDUP_ALWAYS 32u  /* deduplicate every layer pass, even where it is measured to cost
                                    * more than the repeats it saves (default: skipped then; host
                                    * device, packed output, no hot-row tier) */
/* Output format of the agent's rows (flags bits 8-11; ep_agent_config is not versioned
 * by size, so the option rides in flags): an enum ep_row_format_out, default PACKED.
 * Every format is delivered from packed and planar tables (layout in ep_layer_output);
 * the pipeline gathers packed rows and converts them into the staging slot (host
 * memory), which is what the CUDA device copies; the hot-row tier keeps packed rows.
 * ep_agent_create fails with -EINVAL for an unknown format or SCALES/PLANES of an
 * unscaled model (F32/BF16 widen bf16/fp16/fp32 values), and with EP_E_UNSUPPORTED for
 * a format other than PACKED with cache_rows on the CUDA device.
 * ep_layer_output.format reports it. */
#define EP_AGENT_OUT_SHIFT 8u
#define EP_AGENT_OUT_MASK (0xFu << EP_AGENT_OUT_SHIFT)
#define EP_AGENT_OUT(fmt) (((uint32_t)(fmt) << EP_AGENT_OUT_SHIFT) & EP_AGENT_OUT_MASK)

#define EP_SEQ_START 1u            /* first tokens of a sequence */
#define EP_SEQ_END 2u              /* last tokens: the agent forgets the sequence after */

typedef struct ep_seq_tokens {
	uint64_t seq_id;
	const int64_t *tokens;
	uint32_t count;
	uint32_t flags;             /* EP_SEQ_* */
} ep_seq_tokens;

/*
 * Options of one ep_agent_prefetch_ex call, versioned by size: set struct_size to
 * sizeof(ep_prefetch_opts) (ep_prefetch_opts_init does). Fields are only ever added at
 * the end; the library reads only the fields inside struct_size (an older caller's
 * missing fields count as zero), and accepts a larger struct_size (a newer header)
 * when the bytes it does not know are all zero. -EINVAL: struct_size below 8, flags
 * not 0, or unknown non-zero bytes.
 *
 * dead: dead-token flags (DeepSeek-V4.1: the positions of image spans). NULL (no dead
 * token in the batch), or one pointer per batch entry: NULL (no dead token in that
 * entry) or batch[i].count bytes, nonzero = dead. A dead position's own row ids are
 * those of a window of pad' only; no later n-gram of the sequence reaches across it,
 * in this step and in later ones; its token id is not checked. The agent does not
 * guess dead positions from token ids: the caller says which they are.
 */
typedef struct ep_prefetch_opts {
	uint32_t struct_size;       /* sizeof(ep_prefetch_opts) */
	uint32_t flags;             /* reserved: 0 */
	const uint8_t *const *dead; /* NULL or [n] per-entry flag arrays */
} ep_prefetch_opts;

static inline void ep_prefetch_opts_init(ep_prefetch_opts *opts)
{
	opts->struct_size = (uint32_t)sizeof(ep_prefetch_opts);
	opts->flags = 0;
	opts->dead = NULL;
}

/* rows: device memory, n = tokens*columns rows ([tokens][columns] order) in the agent's
 * output format (enum ep_row_format_out), row i at rows + i * row_stride:
 *   PACKED  the stored rows (values then scales), row_bytes = the row format's bytes
 *           (264 for fp8-e4m3 x 256 + e8m0 x 8), row_stride = its padded stride;
 *   VALUES / SCALES  the values part / scales part of each row, exact pitch
 *           (row_stride == row_bytes);
 *   F32     D floats per row (row_bytes = row_stride = 4*D): value * 2^(e8m0 - 127) per
 *           block of 32 (unscaled formats widened), as ep_pool_read_rows_as;
 *   BF16    the same numbers as bfloat16 (round to nearest even), 2*D bytes per row;
 *   PLANES  n values rows of row_bytes = row_stride = D * value size (D for fp8), then,
 *           from rows + n * row_stride, n scales rows of the format's scale bytes each
 *           (D/32 for e8m0), exact pitch: n * (values + scales) bytes in all, the same
 *           bytes as ep_pool_read_rows_as(..., EP_OUT_PLANES) of the same row ids.
 * Dead tokens (ep_agent_prefetch_ex) are not zeroed: their rows are the pad' rows in
 * every format; use ep_agent_live_mask to gate them. */
typedef struct ep_layer_output {
	const void *rows;
	uint32_t tokens;
	uint32_t columns;           /* (max_ngram_size - 1) * n_head_per_ngram */
	uint32_t row_bytes;
	uint32_t row_stride;
	uint32_t layer_id;
	uint32_t format;            /* enum ep_row_format_out (was `reserved`, 0 = packed) */
	uint64_t generation;        /* pool generation the rows came from */
} ep_layer_output;

EP_API void ep_agent_config_init(ep_agent_config *cfg) EP_NOEXCEPT;
EP_API int ep_agent_create(ep_agent **out, const ep_agent_config *cfg) EP_NOEXCEPT;
EP_API void ep_agent_destroy(ep_agent **agent) EP_NOEXCEPT;
EP_API uint32_t ep_agent_layers(const ep_agent *agent) EP_NOEXCEPT;
/* Non-blocking: hash and queue the gather; *ticket identifies the step. */
EP_API int ep_agent_prefetch(ep_agent *agent, const ep_seq_tokens *batch, size_t n, uint64_t *ticket) EP_NOEXCEPT;
/* ep_agent_prefetch with options (dead-token flags); opts NULL = ep_agent_prefetch. */
EP_API int ep_agent_prefetch_ex(ep_agent *agent, const ep_seq_tokens *batch, size_t n,
				const ep_prefetch_opts *opts, uint64_t *ticket) EP_NOEXCEPT;
/* The ticket's live mask in host memory: one byte per token in batch order (1 live,
 * 0 dead), for zeroing the Engram gate of dead positions. Copies min(cap, tokens)
 * bytes into mask (NULL allowed with cap 0: a size query); *tokens (when not NULL)
 * receives the ticket's token count. -ENOENT: unknown or released ticket. */
EP_API int ep_agent_live_mask(ep_agent *agent, uint64_t ticket, uint8_t *mask, size_t cap,
			      size_t *tokens) EP_NOEXCEPT;
/* Block until layer (index in layer_ids order; -1 = all) is in device memory. */
EP_API int ep_agent_wait(ep_agent *agent, uint64_t ticket, int layer) EP_NOEXCEPT;
EP_API int ep_agent_output(ep_agent *agent, uint64_t ticket, uint32_t layer, ep_layer_output *out) EP_NOEXCEPT;
/* cudaEvent_t completing the layer (cudaStreamWaitEvent on the server stream); NULL on host. */
EP_API void *ep_agent_event(ep_agent *agent, uint64_t ticket, uint32_t layer) EP_NOEXCEPT;
EP_API int ep_agent_release(ep_agent *agent, uint64_t ticket) EP_NOEXCEPT;
EP_API int ep_agent_end_sequence(ep_agent *agent, uint64_t seq_id) EP_NOEXCEPT;
/* Metrics as JSON (format 0) or Prometheus text (1) into buf; *needed = bytes incl. NUL. */
EP_API int ep_agent_metrics(ep_agent *agent, int format, char *buf, size_t cap, size_t *needed) EP_NOEXCEPT;
/* Text of the agent's last failed ticket (e.g. the table and offset of a SIGBUS), ""
 * when none failed or agent is NULL. Safe to call from any thread: the text is copied
 * into the calling thread's last error, so the returned pointer is what ep_errormsg()
 * returns afterwards on this thread, valid until the same thread's next call into the
 * library; no buffer is shared between threads. */
EP_API const char *ep_agent_last_error(ep_agent *agent) EP_NOEXCEPT;

#ifdef __cplusplus
}
#endif
#endif /* ENGRAMPOOL_H */
