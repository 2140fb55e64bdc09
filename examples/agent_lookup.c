/* SPDX-License-Identifier: Apache-2.0 */
/* agent_lookup.c - minimal C use of the per-host agent: attach to a pool and a model, one
 * prefetch of a token sequence, wait, print the first bytes of each token's rows per layer.
 * A token written dID (e.g. d129264) is dead (an image position of DeepSeek-V4.1): it is
 * passed with a dead flag and the live mask shows it.
 * Usage: agent_lookup URI MODEL.json TOKEN [TOKEN...] */
#include <engrampool/engrampool.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s URI MODEL.json TOKEN [TOKEN...]\n", argv[0]);
		return 2;
	}
	size_t n = (size_t)(argc - 3);
	int64_t *tokens = calloc(n, sizeof(*tokens));
	uint8_t *dead = calloc(n, 1), *live = calloc(n, 1);
	if (!tokens || !dead || !live)
		return 1;
	for (size_t i = 0; i < n; i++) {
		const char *a = argv[3 + i];
		dead[i] = a[0] == 'd';
		tokens[i] = strtoll(a + dead[i], NULL, 10);
	}

	ep_agent_config cfg;
	ep_agent_config_init(&cfg);
	cfg.pool_uri = argv[1];
	cfg.model_path = argv[2];
	cfg.max_batch_tokens = (uint32_t)n;
	cfg.slots = 1;
	cfg.flags = EP_AGENT_NO_REGISTER; /* a one-shot tool, not a serving host */
	ep_agent *agent = NULL;
	int rc = ep_agent_create(&agent, &cfg);
	if (rc != 0) {
		fprintf(stderr, "attach: %s (%s)\n", ep_errormsg(), ep_strerror(rc));
		free(tokens);
		free(dead);
		free(live);
		return 1;
	}

	ep_seq_tokens seq = {1, tokens, (uint32_t)n, EP_SEQ_START | EP_SEQ_END};
	uint64_t ticket = 0;
	/* Dead flags ride in the versioned options struct (one flag array per batch entry). */
	const uint8_t *dead_per_entry[1] = {dead};
	ep_prefetch_opts opts;
	ep_prefetch_opts_init(&opts);
	opts.dead = dead_per_entry;
	rc = ep_agent_prefetch_ex(agent, &seq, 1, &opts, &ticket);
	if (rc == 0)
		rc = ep_agent_wait(agent, ticket, -1);
	size_t masked = 0;
	if (rc == 0)
		rc = ep_agent_live_mask(agent, ticket, live, n, &masked); /* a server zeroes the gate with it */
	if (rc != 0) {
		/* Data-plane calls return codes only; a failed gather explains itself here. */
		fprintf(stderr, "lookup: %s %s\n", ep_strerror(rc), ep_agent_last_error(agent));
		ep_agent_destroy(&agent);
		free(tokens);
		free(dead);
		free(live);
		return 1;
	}
	for (uint32_t l = 0; l < ep_agent_layers(agent); l++) {
		ep_layer_output o;
		if (ep_agent_output(agent, ticket, l, &o) != 0)
			continue;
		printf("layer %u: %u tokens x %u rows of %u bytes (generation %llu)\n", o.layer_id, o.tokens, o.columns,
		       o.row_bytes, (unsigned long long)o.generation);
		const unsigned char *rows = o.rows; /* host device: device memory is host memory */
		for (uint32_t t = 0; t < o.tokens; t++) {
			printf("  token %lld%s:", (long long)tokens[t], live[t] ? "" : " (dead)");
			for (uint32_t j = 0; j < o.columns && j < 4; j++) {
				const unsigned char *r = rows + ((size_t)t * o.columns + j) * o.row_stride;
				printf(" [%02x%02x%02x%02x..]", r[0], r[1], r[2], r[3]);
			}
			printf("%s\n", o.columns > 4 ? " ..." : "");
		}
	}
	ep_agent_release(agent, ticket);
	ep_agent_destroy(&agent);
	free(tokens);
	free(dead);
	free(live);
	return 0;
}
