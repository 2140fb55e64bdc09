/* SPDX-License-Identifier: Apache-2.0 */
/* attach_lookup.c - minimal C use of libengrampool: attach read-only, find a table,
 * read rows by id. Usage: attach_lookup URI TABLE ROW [ROW...] */
#include <engrampool/engrampool.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s URI TABLE ROW [ROW...]\n", argv[0]);
		return 2;
	}
	ep_pool *pool = NULL;
	if (ep_pool_open(&pool, argv[1], EP_OPEN_READONLY) != 0) {
		fprintf(stderr, "attach: %s\n", ep_errormsg());
		return 1;
	}
	ep_table_info t;
	if (ep_pool_find_table(pool, argv[2], &t) != 0) {
		fprintf(stderr, "table: %s\n", ep_errormsg());
		ep_pool_close(&pool);
		return 1;
	}
	size_t n = (size_t)(argc - 3);
	uint64_t *rows = calloc(n, sizeof(*rows));
	unsigned char *buf = calloc(n, t.row_bytes);
	if (!rows || !buf)
		return 1;
	for (size_t i = 0; i < n; i++)
		rows[i] = strtoull(argv[3 + i], NULL, 10);
	int rc = ep_pool_read_rows(pool, argv[2], rows, n, buf, n * t.row_bytes);
	if (rc != 0) {
		fprintf(stderr, "read: %s\n", ep_errormsg());
	} else {
		printf("table %s: %llu rows of %u bytes (layer %u, generation %llu)\n", t.name, (unsigned long long)t.rows,
		       t.row_bytes, t.layer_id, (unsigned long long)t.generation);
		for (size_t i = 0; i < n; i++) {
			printf("row %-10llu", (unsigned long long)rows[i]);
			if (t.dtype == EP_DTYPE_FP32) {
				for (unsigned v = 0; v < 4 && v < t.values_per_row; v++) {
					float f;
					memcpy(&f, buf + i * t.row_bytes + v * 4, 4);
					printf(" %+.4f", f);
				}
				printf(" ...\n");
			} else {
				for (unsigned b = 0; b < 8 && b < t.row_bytes; b++)
					printf(" %02x", buf[i * t.row_bytes + b]);
				printf(" ...\n");
			}
		}
	}
	free(rows);
	free(buf);
	ep_pool_close(&pool);
	return rc == 0 ? 0 : 1;
}
