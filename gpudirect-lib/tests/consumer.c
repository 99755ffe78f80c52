// SPDX-License-Identifier: MIT
/* A program built only from the installed header and pkg-config file. */
#include <gpudirect/gpudirect.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	const char *v = gpud_version();

	if (!v || !*v) {
		printf("FAIL: empty gpud_version()\n");
		return 1;
	}
	if (strcmp(gpud_errmsg(), "") != 0) {
		printf("FAIL: fresh thread has an error message: %s\n", gpud_errmsg());
		return 1;
	}
	printf("ok: consumer linked against libgpudirect %s\n", v);
	return 0;
}
