/* SPDX-License-Identifier: Apache-2.0 */
/* consumer.c - an out-of-tree program built only with `pkg-config engrampool`. */
#include <engrampool/engrampool.h>

#include <stdio.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: consumer URI\n");
		return 2;
	}
	if (ep_pool_create(argv[1], 8ull << 20) != 0) {
		fprintf(stderr, "create: %s\n", ep_errormsg());
		return 1;
	}
	ep_pool *pool = NULL;
	if (ep_pool_open(&pool, argv[1], EP_OPEN_READONLY) != 0) {
		fprintf(stderr, "open: %s\n", ep_errormsg());
		return 1;
	}
	ep_pool_info info;
	if (ep_pool_info_get(pool, &info) != 0) {
		fprintf(stderr, "info: %s\n", ep_errormsg());
		return 1;
	}
	printf("engrampool %s: pool of %llu bytes, generation %llu, %u tables\n", ep_version(),
	       (unsigned long long)info.size, (unsigned long long)info.generation, info.tables);
	ep_pool_close(&pool);
	return info.size == (8ull << 20) && info.tables == 0 ? 0 : 1;
}
