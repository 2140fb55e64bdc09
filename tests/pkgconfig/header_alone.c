/* SPDX-License-Identifier: Apache-2.0 */
/* header_alone.c - the public C header compiles alone as strict C11 and links. */
#include <engrampool/engrampool.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
	ep_pool *pool = NULL;
	int rc = ep_pool_open(&pool, "bogus:/nowhere", EP_OPEN_READONLY);
	if (rc != EP_E_URI || pool != NULL) {
		fprintf(stderr, "expected EP_E_URI, got %d\n", rc);
		return 1;
	}
	if (strstr(ep_errormsg(), "bogus") == NULL) {
		fprintf(stderr, "error message does not name the scheme: %s\n", ep_errormsg());
		return 1;
	}
	ep_pool_close(&pool); /* NULL-safe */
	printf("%s: %s\n", ep_version(), ep_strerror(rc));
	return 0;
}
