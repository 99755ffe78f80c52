// SPDX-License-Identifier: MIT
/*
 * Unit tests of the pure parts: frame parser (valid, partial, malformed),
 * handshake records, and the stripe plan both ends must agree on. Also runs
 * every file of the fuzzer's seed corpus through the parser.
 */
#include "gpud_test.h"
#include "engine/ctrl.h"
#include "engine/engine.h"

#include <dirent.h>
#include <errno.h>

static void frames(void)
{
	uint8_t b[DM_FRAME_MAX_LEN + 8];
	struct dm_frame f;
	size_t n;

	n = dm_frame_encode_msg(b, 7, 1 << 20, -3);
	T_ASSERT_EQ(32, n);
	for (size_t k = 0; k < n; k++)
		T_ASSERT_EQ(0, dm_frame_parse(b, k, &f));	/* partial: need more */
	T_ASSERT_EQ(n, dm_frame_parse(b, n, &f));
	T_ASSERT_EQ(DM_FRAME_MSG, f.type);
	T_ASSERT_EQ(7, f.msg.seq);
	T_ASSERT_EQ(1 << 20, f.msg.size);
	T_ASSERT_EQ(-3, f.msg.tag);

	n = dm_frame_encode_err(b, 5, "size\x01 mismatch");
	T_ASSERT_EQ(n, dm_frame_parse(b, n, &f));
	T_ASSERT_STREQ("size? mismatch", f.err.text);
	n = dm_frame_encode_bye(b);
	T_ASSERT_EQ(8, dm_frame_parse(b, n, &f));

	/* malformed: bad magic (even 1 byte in), flags, type, lengths, size, reserved */
	b[0] = 0;
	T_ASSERT_EQ(-EBADMSG, dm_frame_parse(b, 1, &f));
	n = dm_frame_encode_msg(b, 0, 1, 1);
	b[3] = 1;
	T_ASSERT_EQ(-EBADMSG, dm_frame_parse(b, n, &f));
	n = dm_frame_encode_msg(b, 0, 1, 1);
	b[2] = 99;
	T_ASSERT_EQ(-EBADMSG, dm_frame_parse(b, n, &f));
	n = dm_frame_encode_msg(b, 0, 1, 1);
	b[4] = 23;
	T_ASSERT_EQ(-EBADMSG, dm_frame_parse(b, n, &f));
	n = dm_frame_encode_msg(b, 0, (1ull << 40) + 1, 1);
	T_ASSERT_EQ(-EBADMSG, dm_frame_parse(b, n, &f));
	n = dm_frame_encode_msg(b, 0, 1, 1);
	b[28] = 1;
	T_ASSERT_EQ(-EBADMSG, dm_frame_parse(b, n, &f));
	n = dm_frame_encode_err(b, 1, "abc");
	b[8 + 4] = 9;	/* text length disagrees with frame length */
	T_ASSERT_EQ(-EBADMSG, dm_frame_parse(b, n, &f));
	n = dm_frame_encode_err(b, 1, "abc");
	b[8 + 8] = '\n';	/* not printable */
	T_ASSERT_EQ(-EBADMSG, dm_frame_parse(b, n, &f));
	n = dm_frame_encode_bye(b);
	b[4] = 1;
	T_ASSERT_EQ(-EBADMSG, dm_frame_parse(b, n, &f));
}

static void handshake(void)
{
	struct dm_hello h = { .version = 1, .kind = 1, .index = 3, .nsocks = 4,
			      .max_chunk = 1 << 19, .secret = 0x1122334455667788ull, .conn_id = 9 };
	struct dm_ack a = { .version = 1, .status = DM_ACK_BAD_SECRET, .mode = 2 }, a2;
	uint8_t b[DM_HELLO_LEN], c[DM_ACK_LEN];
	struct dm_hello h2;

	dm_hello_encode(&h, b);
	T_ASSERT_OK(dm_hello_decode(b, &h2));
	T_ASSERT(!memcmp(&h, &h2, sizeof(h)));
	b[0] ^= 1;
	T_ASSERT_EQ(-EPROTO, dm_hello_decode(b, &h2));
	dm_ack_encode(&a, c);
	T_ASSERT_OK(dm_ack_decode(c, &a2));
	T_ASSERT_EQ(DM_ACK_BAD_SECRET, a2.status);
	T_ASSERT(strstr(dm_ack_status_str(a2.status), "secret"));
}

/* The listener's member addresses: round trip, and what the decoder refuses. */
static void addrs(void)
{
	struct dm_addrs a = { .family = 6, .count = 8 }, a2;
	uint8_t b[DM_ADDRS_LEN];

	for (int i = 0; i < 8; i++) {
		memset(a.m[i].addr, 0xf0 + i, 16);
		a.m[i].port = (uint16_t)(40000 + i);
	}
	dm_addrs_encode(&a, b);
	T_ASSERT_OK(dm_addrs_decode(b, &a2));
	T_ASSERT(!memcmp(&a, &a2, sizeof(a)));
	b[7] = 9;	/* more members than a fused NIC has */
	T_ASSERT_EQ(-EPROTO, dm_addrs_decode(b, &a2));
	b[7] = 0;
	T_ASSERT_EQ(-EPROTO, dm_addrs_decode(b, &a2));
	b[7] = 8;
	b[6] = 5;	/* family neither 4 nor 6 */
	T_ASSERT_EQ(-EPROTO, dm_addrs_decode(b, &a2));
	/* one IPv4 member: the unused ones must be zero, padding too */
	a = (struct dm_addrs){ .family = 4, .count = 1, .m[0] = { .addr = { 198, 18, 0, 1 },
								 .port = 5000 } };
	dm_addrs_encode(&a, b);
	T_ASSERT_OK(dm_addrs_decode(b, &a2));
	T_ASSERT_EQ(5000, a2.m[0].port);
	b[8 + 20 + 3] = 1;	/* a stray byte in member 1 */
	T_ASSERT_EQ(-EPROTO, dm_addrs_decode(b, &a2));
	b[8 + 20 + 3] = 0;
	b[8 + 18] = 1;		/* member 0's padding */
	T_ASSERT_EQ(-EPROTO, dm_addrs_decode(b, &a2));
	b[8 + 18] = 0;
	b[0] ^= 1;
	T_ASSERT_EQ(-EPROTO, dm_addrs_decode(b, &a2));
}

static void stripe(void)
{
	/* chunks: page multiples, at least 64 KiB, at most the max; cover the message */
	static const uint64_t sizes[] = { 1, 4096, 65537, 1 << 20, 3 << 20, 256 << 20, 12345679 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (unsigned ns = 1; ns <= 16; ns *= 2) {
			uint64_t c = dm_stripe_chunk(sizes[i], ns, 512 << 10);
			uint64_t n = dm_stripe_nchunks(sizes[i], c);

			T_ASSERT(c % 4096 == 0 && c >= (64 << 10) && c <= (512 << 10));
			T_ASSERT(n * c >= sizes[i] && (n - 1) * c < sizes[i]);
		}
	}
	T_ASSERT_EQ(256 << 10, dm_stripe_chunk(1 << 20, 4, 512 << 10));	/* all 4 sockets */
	/* NCCL's 128 KiB P2P chunk: whole, on one socket; one byte more: striped */
	T_ASSERT_EQ(1, dm_stripe_nchunks(128 << 10, dm_stripe_chunk(128 << 10, 4, 512 << 10)));
	T_ASSERT_EQ(1, dm_stripe_nchunks(65537, dm_stripe_chunk(65537, 4, 512 << 10)));
	T_ASSERT(dm_stripe_nchunks((128 << 10) + 1, dm_stripe_chunk((128 << 10) + 1, 4, 512 << 10)) > 1);
	/* a 64 KiB NCCL_DEVMEM_CHUNK_SIZE still caps it */
	T_ASSERT_EQ(2, dm_stripe_nchunks(128 << 10, dm_stripe_chunk(128 << 10, 4, 64 << 10)));
	T_ASSERT_EQ(0, dm_stripe_nchunks(0, dm_stripe_chunk(0, 4, 512 << 10)));
}

static void corpus(const char *dir)
{
	struct dm_frame f;
	struct dirent *de;
	int files = 0;
	DIR *d = opendir(dir);

	if (!d)
		T_FAIL("corpus %s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		uint8_t b[4096];
		char path[512];
		size_t n;
		FILE *fp;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fp = fopen(path, "rb");
		T_ASSERT(fp);
		n = fread(b, 1, sizeof(b), fp);
		fclose(fp);
		int r = dm_frame_parse(b, n, &f);

		T_ASSERT(r <= (int)n);
		/* seeds named ok-* are valid frames */
		if (!strncmp(de->d_name, "ok-", 3))
			T_ASSERT(r > 0);
		files++;
	}
	closedir(d);
	T_ASSERT(files >= 4);
	t_log("corpus: %d files parsed", files);
}

int main(int argc, char **argv)
{
	frames();
	handshake();
	addrs();
	stripe();
	if (argc > 1)
		corpus(argv[1]);
	t_log("PASS");
	return T_EXIT_PASS;
}
