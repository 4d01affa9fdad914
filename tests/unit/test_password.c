/*
 * test_password.c - credentials: yescrypt hashing and crypt(3) imports
 * (password.c), SCRAM-SHA-256 with the RFC 7677 vector and its failure
 * paths, SASLprep (RFC 4013 examples), strict base64, CRAM-MD5 (RFC 2195)
 * and APOP (RFC 1939) known answers (scram.c), and the AES-GCM secret box
 * with its key file rules (secretbox.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "password.h"
#include "scram.h"
#include "secretbox.h"

/* --- password.c ------------------------------------------------------------------------------ */

static void
test_password_hash_verify_yescrypt(void **state)
{
	(void)state;
	char h[HK_PW_HASH_OUT];
	assert_int_equal(hk_password_hash("correct horse", 0, h, sizeof(h)), 0);
	assert_memory_equal(h, "$y$", 3);
	assert_int_equal(hk_password_verify("correct horse", h), HK_PW_OK);
	assert_int_equal(hk_password_verify("correct horsE", h), HK_PW_MISMATCH);
	assert_int_equal(hk_password_verify("", h), HK_PW_MISMATCH);
	assert_false(hk_password_needs_rehash(h));
	assert_string_equal(hk_password_method(h), "yescrypt");
	/* two hashes of one password differ (salt) */
	char h2[HK_PW_HASH_OUT];
	assert_int_equal(hk_password_hash("correct horse", 1, h2, sizeof(h2)), 0);
	assert_string_not_equal(h, h2);
	assert_int_equal(hk_password_verify("correct horse", h2), HK_PW_OK);
}

/* The login cache: only successes, bound to the hash (a new password's
 * hash misses), and a hit is much cheaper than yescrypt. */
static void
test_password_verify_cached(void **state)
{
	(void)state;
	hk_password_cache_clear();
	char h[HK_PW_HASH_OUT], h2[HK_PW_HASH_OUT];
	assert_int_equal(hk_password_hash("correct horse", 0, h, sizeof(h)), 0);
	assert_int_equal(hk_password_hash("correct horse", 0, h2, sizeof(h2)), 0);
	assert_int_equal(hk_password_verify_cached("wrong horse", h), HK_PW_MISMATCH);
	assert_int_equal(hk_password_verify_cached("wrong horse", h), HK_PW_MISMATCH); /* failures are not cached */
	struct timespec t0, t1, t2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(hk_password_verify_cached("correct horse", h), HK_PW_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(hk_password_verify_cached("correct horse", h), HK_PW_OK);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	double miss = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	double hit = (double)(t2.tv_sec - t1.tv_sec) + (double)(t2.tv_nsec - t1.tv_nsec) / 1e9;
	printf("# yescrypt verify %.1f ms, cached %.1f us\n", miss * 1e3, hit * 1e6);
	assert_true(hit < miss / 10);
	/* the cache entry belongs to that hash: another hash of the same
	 * password, or a hash of another password, is verified again */
	assert_int_equal(hk_password_verify_cached("wrong horse", h), HK_PW_MISMATCH);
	assert_int_equal(hk_password_verify_cached("correct horse", h2), HK_PW_OK);
	char h3[HK_PW_HASH_OUT];
	assert_int_equal(hk_password_hash("new password!", 0, h3, sizeof(h3)), 0);
	assert_int_equal(hk_password_verify_cached("correct horse", h3), HK_PW_MISMATCH);
	hk_password_cache_clear();
}

static void
test_password_known_answers_imports(void **state)
{
	(void)state;
	/* yescrypt made once with libxcrypt (regression), sha-crypt from `openssl passwd`,
	 * bcrypt from the crypt_blowfish test vectors */
	static const struct {
		const char *hash, *pw, *method;
	} v[] = {
		{ "$y$j9T$k2XAnEHBqQ1Ct2aMXFKNa/$36nx2icDsQehvDTTolBYF7rAsHqUbiKilIs5kfb./dC", "hikyaku-import-y", "yescrypt" },
		{ "$6$saltsalt$VYcYnQQhjjyuR8fzll9KDk64MBjP/Id/TpCzliJdlYeqH8XF2m1KP7Bq7DO/F3RxtT0qvX9jWQi62c7oMuxmO/",
		    "hikyaku-import-6", "sha512crypt" },
		{ "$5$saltsalt$rv753SwiF5qy1Osh9EaVdeuUCIvJgvO.KaJsNSodlb0", "hikyaku-import-5", "sha256crypt" },
		{ "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U", "bcrypt" },
		{ "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U", "bcrypt" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(hk_password_verify(v[i].pw, v[i].hash), HK_PW_OK);
		assert_int_equal(hk_password_verify("wrong password", v[i].hash), HK_PW_MISMATCH);
		assert_string_equal(hk_password_method(v[i].hash), v[i].method);
		assert_int_equal(hk_password_needs_rehash(v[i].hash), i != 0);
	}
	assert_true(hk_password_needs_rehash("$1$abc$abcdefghijklmnopqrstuv"));
}

static void
test_password_verify_bad_hashes(void **state)
{
	(void)state;
	assert_int_equal(hk_password_verify("x", ""), HK_PW_ERROR);
	assert_int_equal(hk_password_verify("x", "*"), HK_PW_ERROR);
	assert_int_equal(hk_password_verify("x", "!locked"), HK_PW_ERROR);
	assert_int_equal(hk_password_verify("x", "$unknown$abc$def"), HK_PW_ERROR);
	assert_int_not_equal(hk_password_verify("x", "$6$"), HK_PW_OK); /* a setting, not a hash */
	char big[600];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	/* longer than HK_PASSWORD_MAX: refused without hashing */
	assert_int_equal(hk_password_verify(big, "$6$saltsalt$VYcYnQQhjjyuR8fzll9KDk64MBjP/Id/TpCzliJdlYeqH8XF2m1KP7Bq7DO/F3RxtT0qvX9jWQi62c7oMuxmO/"),
	    HK_PW_MISMATCH);
	char out[HK_PW_HASH_OUT];
	assert_int_equal(hk_password_hash(big, 0, out, sizeof(out)), -1);
	assert_int_equal(hk_password_hash("ok password", 0, out, 10), -1);
	assert_int_equal(errno, ERANGE);
	hk_password_burn("anything", 1); /* must not crash; costs one verification */
}

static void
test_password_policy(void **state)
{
	(void)state;
	assert_null(hk_password_check("eight ch"));
	assert_null(hk_password_check("パスワード長いです")); /* 9 characters */
	assert_non_null(hk_password_check("short"));
	assert_non_null(hk_password_check("パスワード"));         /* 5 characters, 15 bytes */
	assert_non_null(hk_password_check("        "));          /* only spaces */
	assert_non_null(hk_password_check("has\ttab inside"));
	assert_non_null(hk_password_check("has\nnewline"));
	assert_non_null(hk_password_check("bad \xff utf-8 here"));
	assert_non_null(hk_password_check("overlong \xc0\xaf utf8"));
	assert_non_null(hk_password_check("surrogate \xed\xa0\x80 x"));
	char big[HK_PASSWORD_MAX + 2];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_non_null(hk_password_check(big));
	big[HK_PASSWORD_MAX] = '\0';
	assert_null(hk_password_check(big));
}

/* --- SASLprep and base64 ---------------------------------------------------------------------- */

static void
test_saslprep_rfc4013_examples(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out; /* out NULL: error */
	} v[] = {
		{ "I\xC2\xAD" "X", "IX" },      /* SOFT HYPHEN mapped to nothing */
		{ "user", "user" },
		{ "USER", "USER" },             /* case preserved */
		{ "\xC2\xAA", "a" },            /* NFKC */
		{ "\xE2\x85\xA8", "IX" },       /* ROMAN NUMERAL NINE */
		{ "\x07", NULL },               /* prohibited */
		{ "\xD8\xA7" "1", NULL },       /* bidi rule */
		{ "a\xC2\xA0" "b", "a b" },     /* non-ASCII space mapped to SPACE */
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *out = NULL;
		int rc = hk_saslprep(v[i].in, &out);
		if (v[i].out) {
			assert_int_equal(rc, 0);
			assert_string_equal(out, v[i].out);
		} else {
			assert_int_equal(rc, -1);
			assert_null(out);
		}
		free(out);
	}
}

static void
test_base64_strict(void **state)
{
	(void)state;
	struct hk_buf b;
	buf_init(&b);
	hk_b64_encode("any carnal pleas", 16, &b);
	assert_string_equal(b.data, "YW55IGNhcm5hbCBwbGVhcw==");
	buf_reset(&b);
	assert_true(hk_b64_decode("YW55IGNhcm5hbCBwbGVhcw==", 24, &b));
	assert_int_equal(b.len, 16);
	assert_memory_equal(b.data, "any carnal pleas", 16);
	const char *bad[] = { "YW55IGNhcm5hbCBwbGVhcw=", "YW55 IGNh", "YW5=IGNh", "Y===", "YW55IGNhcm5hbCBwbGVhcx==",
		"!!!!", "YQ=a" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&b);
		assert_false(hk_b64_decode(bad[i], strlen(bad[i]), &b));
	}
	buf_reset(&b);
	assert_true(hk_b64_decode("", 0, &b));
	assert_int_equal(b.len, 0);
	buf_fini(&b);
}

/* --- SCRAM -------------------------------------------------------------------------------------- */

#define RFC_CNONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"

static void
rfc7677_keys(struct hk_scram_keys *k)
{
	struct hk_buf salt;
	buf_init(&salt);
	assert_true(hk_b64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, &salt));
	assert_int_equal(hk_scram_keys_derive("pencil", (const uint8_t *)salt.data, salt.len, 4096, k), 0);
	buf_fini(&salt);
}

static void
test_scram_rfc7677_vector(void **state)
{
	(void)state;
	struct hk_scram_keys k;
	rfc7677_keys(&k);
	struct hk_scram_server *s = hk_scram_server_new(NULL);
	hk_scram_server_set_nonce(s, RFC_SNONCE);
	const char *cf = "n,,n=user,r=" RFC_CNONCE;
	assert_int_equal(hk_scram_server_client_first(s, cf, strlen(cf)), HK_SCRAM_CONTINUE);
	assert_string_equal(hk_scram_server_username(s), "user");
	struct hk_buf out;
	buf_init(&out);
	assert_int_equal(hk_scram_server_first(s, &k, &out), HK_SCRAM_CONTINUE);
	assert_string_equal(out.data, "r=" RFC_CNONCE RFC_SNONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
	buf_reset(&out);
	const char *fin = "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
	assert_int_equal(hk_scram_server_final(s, fin, strlen(fin), &out), HK_SCRAM_OK);
	assert_string_equal(out.data, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
	/* nothing more is accepted */
	buf_reset(&out);
	assert_int_equal(hk_scram_server_final(s, fin, strlen(fin), &out), HK_SCRAM_BAD);
	buf_fini(&out);
	hk_scram_server_free(&s);
	assert_null(s);
}

/* A minimal client: the proof for password over auth message. */
static void
client_proof(const char *password, const struct hk_scram_keys *k, const char *auth, char *proof_b64, size_t cap)
{
	uint8_t salted[32], ckey[32], stored[32], sig[32], proof[32];
	unsigned int l = 32;
	assert_int_equal(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), k->salt, k->salt_len, (int)k->iterations,
	                     EVP_sha256(), 32, salted),
	    1);
	HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Client Key", 10, ckey, &l);
	SHA256(ckey, 32, stored);
	HMAC(EVP_sha256(), stored, 32, (const unsigned char *)auth, strlen(auth), sig, &l);
	for (int i = 0; i < 32; i++)
		proof[i] = ckey[i] ^ sig[i];
	struct hk_buf b;
	buf_init(&b);
	hk_b64_encode(proof, 32, &b);
	snprintf(proof_b64, cap, "%s", b.data);
	buf_fini(&b);
}

/* Runs a full exchange; returns the final status and the server-final in final_r. */
static enum hk_scram_status
exchange(const struct hk_scram_opts *opts, const char *gs2, const char *user, const char *password,
    const struct hk_scram_keys *server_keys, const uint8_t *cb, size_t cblen, char *final_r, size_t cap)
{
	struct hk_scram_server *s = hk_scram_server_new(opts);
	char cf[512], bare[400], auth[2048], fin[1024], cbind[256], proof[64];
	snprintf(bare, sizeof(bare), "n=%s,r=clientnonce123", user);
	snprintf(cf, sizeof(cf), "%s%s", gs2, bare);
	enum hk_scram_status st = hk_scram_server_client_first(s, cf, strlen(cf));
	if (st != HK_SCRAM_CONTINUE) {
		hk_scram_server_free(&s);
		final_r[0] = '\0';
		return st;
	}
	struct hk_buf sf, c, out;
	buf_init(&sf);
	buf_init(&c);
	buf_init(&out);
	assert_int_equal(hk_scram_server_first(s, server_keys, &sf), HK_SCRAM_CONTINUE);
	/* the client derives with the salt and count it was sent */
	struct hk_scram_keys k;
	memset(&k, 0, sizeof(k));
	const char *sp = strstr(sf.data, ",s="), *ip = strstr(sf.data, ",i=");
	struct hk_buf salt;
	buf_init(&salt);
	assert_true(hk_b64_decode(sp + 3, (size_t)(ip - sp - 3), &salt));
	k.salt_len = (uint8_t)salt.len;
	memcpy(k.salt, salt.data, salt.len);
	k.iterations = (uint32_t)atoi(ip + 3);
	buf_fini(&salt);
	memcpy(cbind, gs2, strlen(gs2));
	if (cb)
		memcpy(cbind + strlen(gs2), cb, cblen);
	hk_b64_encode(cbind, strlen(gs2) + (cb ? cblen : 0), &c);
	const char *nonce = sf.data + 2;
	const char *comma = strchr(nonce, ',');
	snprintf(fin, sizeof(fin), "c=%s,r=%.*s", c.data, (int)(comma - nonce), nonce);
	snprintf(auth, sizeof(auth), "%s,%s,%s", bare, sf.data, fin);
	client_proof(password, &k, auth, proof, sizeof(proof));
	size_t fl = strlen(fin);
	snprintf(fin + fl, sizeof(fin) - fl, ",p=%s", proof);
	st = hk_scram_server_final(s, fin, strlen(fin), &out);
	snprintf(final_r, cap, "%s", out.data ? out.data : "");
	buf_fini(&sf);
	buf_fini(&c);
	buf_fini(&out);
	hk_scram_server_free(&s);
	return st;
}

static void
test_scram_exchange_outcomes(void **state)
{
	(void)state;
	struct hk_scram_keys k;
	assert_int_equal(hk_scram_keys_new("s3cret pass", 4096, &k), 0);
	assert_int_equal(k.salt_len, HK_SCRAM_SALT_LEN);
	char fin[256];
	assert_int_equal(exchange(NULL, "n,,", "taro@example.jp", "s3cret pass", &k, NULL, 0, fin, sizeof(fin)), HK_SCRAM_OK);
	assert_memory_equal(fin, "v=", 2);
	assert_int_equal(exchange(NULL, "n,,", "taro@example.jp", "wrong pass", &k, NULL, 0, fin, sizeof(fin)),
	    HK_SCRAM_FAIL);
	assert_string_equal(fin, "e=invalid-proof");
	/* unknown user: looks normal until the proof */
	assert_int_equal(exchange(NULL, "n,,", "nobody@example.jp", "s3cret pass", NULL, NULL, 0, fin, sizeof(fin)),
	    HK_SCRAM_FAIL);
	assert_string_equal(fin, "e=invalid-proof");
	/* authzid equal to the user is fine, another one is not */
	assert_int_equal(exchange(NULL, "n,a=taro@example.jp,", "taro@example.jp", "s3cret pass", &k, NULL, 0, fin, sizeof(fin)),
	    HK_SCRAM_OK);
	assert_int_equal(exchange(NULL, "n,a=admin@example.jp,", "taro@example.jp", "s3cret pass", &k, NULL, 0, fin, sizeof(fin)),
	    HK_SCRAM_FAIL);
	/* "y": the client could bind but thinks we cannot */
	assert_int_equal(exchange(NULL, "y,,", "taro@example.jp", "s3cret pass", &k, NULL, 0, fin, sizeof(fin)), HK_SCRAM_OK);
	uint8_t cbdata[32];
	memset(cbdata, 0x5a, sizeof(cbdata));
	struct hk_scram_cb cb = { "tls-exporter", cbdata, sizeof(cbdata) };
	struct hk_scram_opts plain_with_cb = { .plus = false, .cb = &cb };
	assert_int_equal(exchange(&plain_with_cb, "y,,", "taro@example.jp", "s3cret pass", &k, NULL, 0, fin, sizeof(fin)),
	    HK_SCRAM_FAIL); /* downgrade */
	/* -PLUS with tls-exporter */
	struct hk_scram_opts plus = { .plus = true, .cb = &cb };
	assert_int_equal(exchange(&plus, "p=tls-exporter,,", "taro@example.jp", "s3cret pass", &k, cbdata, sizeof(cbdata), fin,
	                     sizeof(fin)),
	    HK_SCRAM_OK);
	uint8_t other[32];
	memset(other, 0x33, sizeof(other));
	assert_int_equal(exchange(&plus, "p=tls-exporter,,", "taro@example.jp", "s3cret pass", &k, other, sizeof(other), fin,
	                     sizeof(fin)),
	    HK_SCRAM_FAIL);
	assert_string_equal(fin, "e=channel-bindings-dont-match");
	assert_int_equal(exchange(&plus, "p=tls-unique,,", "taro@example.jp", "s3cret pass", &k, NULL, 0, fin, sizeof(fin)),
	    HK_SCRAM_FAIL);
	assert_int_equal(exchange(&plus, "n,,", "taro@example.jp", "s3cret pass", &k, NULL, 0, fin, sizeof(fin)), HK_SCRAM_BAD);
	assert_int_equal(exchange(NULL, "p=tls-exporter,,", "taro@example.jp", "s3cret pass", &k, NULL, 0, fin, sizeof(fin)),
	    HK_SCRAM_BAD);
}

static void
test_scram_malformed_messages(void **state)
{
	(void)state;
	static const char *bad_first[] = {
		"", "n", "n,", "n,,", "x,,n=u,r=abc", "n,,r=abc", "n,,n=u", "n,,n=u,r=", "n,,n=u=2X,r=abc",
		"n,,n=,r=abc", "n,,m=ext,n=u,r=abc", "n,,n=u,r=a,b", "n,,n=u,r=abc,", "n,b=x,n=u,r=abc", "n,,n=u,r=ab\x01",
		"n,,n=u,r=abc,1=x",
	};
	for (size_t i = 0; i < sizeof(bad_first) / sizeof(bad_first[0]); i++) {
		struct hk_scram_server *s = hk_scram_server_new(NULL);
		assert_int_equal(hk_scram_server_client_first(s, bad_first[i], strlen(bad_first[i])), HK_SCRAM_BAD);
		struct hk_buf out;
		buf_init(&out);
		assert_int_equal(hk_scram_server_first(s, NULL, &out), HK_SCRAM_BAD); /* out of order now */
		buf_fini(&out);
		hk_scram_server_free(&s);
	}
	/* NUL inside, and an oversized message */
	struct hk_scram_server *s = hk_scram_server_new(NULL);
	assert_int_equal(hk_scram_server_client_first(s, "n,,n=u\0x,r=abc", 14), HK_SCRAM_BAD);
	hk_scram_server_free(&s);
	char *big = malloc(HK_SCRAM_MSG_MAX + 10);
	memset(big, 'a', HK_SCRAM_MSG_MAX + 9);
	memcpy(big, "n,,n=u,r=", 9);
	s = hk_scram_server_new(NULL);
	assert_int_equal(hk_scram_server_client_first(s, big, HK_SCRAM_MSG_MAX + 9), HK_SCRAM_BAD);
	hk_scram_server_free(&s);
	free(big);
	/* =2C and =3D in the username */
	s = hk_scram_server_new(NULL);
	const char *cf = "n,,n=a=2Cb=3Dc,r=abc";
	assert_int_equal(hk_scram_server_client_first(s, cf, strlen(cf)), HK_SCRAM_CONTINUE);
	assert_string_equal(hk_scram_server_username(s), "a,b=c");
	/* bad final messages */
	struct hk_scram_keys k;
	rfc7677_keys(&k);
	struct hk_buf out;
	buf_init(&out);
	assert_int_equal(hk_scram_server_first(s, &k, &out), HK_SCRAM_CONTINUE);
	char nonce[128];
	snprintf(nonce, sizeof(nonce), "%.*s", (int)(strchr(out.data, ',') - out.data - 2), out.data + 2);
	char fin[400];
	snprintf(fin, sizeof(fin), "c=biws,r=%s,p=AAAA,x=after", nonce);
	buf_reset(&out);
	assert_int_equal(hk_scram_server_final(s, fin, strlen(fin), &out), HK_SCRAM_BAD);
	hk_scram_server_free(&s);
	/* wrong nonce, wrong gs2 echo, non-base64 proof */
	const char *finals[] = { "c=biws,r=othernonce,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=eSws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=!!!!", "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=AAAA",
		"c=biws,r=" RFC_CNONCE RFC_SNONCE, "r=" RFC_CNONCE RFC_SNONCE ",c=biws,p=AAAA" };
	const char *expect[] = { "e=other-error", "e=channel-bindings-dont-match", "e=invalid-encoding", "e=invalid-encoding",
		"", "" };
	for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
		s = hk_scram_server_new(NULL);
		hk_scram_server_set_nonce(s, RFC_SNONCE);
		cf = "n,,n=user,r=" RFC_CNONCE;
		assert_int_equal(hk_scram_server_client_first(s, cf, strlen(cf)), HK_SCRAM_CONTINUE);
		buf_reset(&out);
		assert_int_equal(hk_scram_server_first(s, &k, &out), HK_SCRAM_CONTINUE);
		buf_reset(&out);
		enum hk_scram_status st = hk_scram_server_final(s, finals[i], strlen(finals[i]), &out);
		assert_int_equal(st, expect[i][0] ? HK_SCRAM_FAIL : HK_SCRAM_BAD);
		assert_string_equal(out.data ? out.data : "", expect[i]);
		hk_scram_server_free(&s);
	}
	buf_fini(&out);
}

static void
test_scram_keys_limits(void **state)
{
	(void)state;
	struct hk_scram_keys k;
	uint8_t salt[16] = { 1 };
	assert_int_equal(hk_scram_keys_derive("pencil", salt, 15, 4096, &k), -1); /* salt < 16 bytes */
	assert_int_equal(hk_scram_keys_derive("pencil", salt, 16, 4095, &k), -1);
	assert_int_equal(hk_scram_keys_derive("pencil", salt, 16, HK_SCRAM_ITER_MAX + 1, &k), -1);
	assert_int_equal(hk_scram_keys_derive("bad\x07pw", salt, 16, 4096, &k), -1);
	assert_int_equal(hk_scram_keys_derive("pencil", salt, 16, 4096, &k), 0);
	assert_true(hk_scram_keys_valid(&k));
	/* SASLprep happens inside: U+2168 and "IX" give the same keys */
	struct hk_scram_keys k2;
	assert_int_equal(hk_scram_keys_derive("\xE2\x85\xA8", salt, 16, 4096, &k), 0);
	assert_int_equal(hk_scram_keys_derive("IX", salt, 16, 4096, &k2), 0);
	assert_memory_equal(k.stored_key, k2.stored_key, 32);
}

/* --- CRAM-MD5 and APOP ---------------------------------------------------------------------------- */

static void
test_cram_md5_rfc2195(void **state)
{
	(void)state;
	const char *ch = "<1896.697170952@postoffice.reston.mci.net>";
	char user[64], dig[33];
	assert_true(hk_cram_md5_split("tim b913a602c7eda7a495b4e6e7334d3890", user, sizeof(user), dig));
	assert_string_equal(user, "tim");
	assert_true(hk_cram_md5_verify("tanstaaftanstaaf", 16, ch, dig));
	assert_true(hk_cram_md5_verify("tanstaaftanstaaf", 16, ch, "B913A602C7EDA7A495B4E6E7334D3890"));
	assert_false(hk_cram_md5_verify("tanstaaftanstaaX", 16, ch, dig));
	assert_false(hk_cram_md5_verify("tanstaaftanstaaf", 16, ch, "b913a602c7eda7a495b4e6e7334d389"));
	assert_false(hk_cram_md5_verify("tanstaaftanstaaf", 16, ch, "g913a602c7eda7a495b4e6e7334d3890"));
	assert_false(hk_cram_md5_split("tim", user, sizeof(user), dig));
	assert_false(hk_cram_md5_split(" b913a602c7eda7a495b4e6e7334d3890", user, sizeof(user), dig));
	assert_false(hk_cram_md5_split("tim b913a602c7eda7a495b4e6e7334d38zz", user, sizeof(user), dig));
	assert_false(hk_cram_md5_split("a-very-long-user b913a602c7eda7a495b4e6e7334d3890", user, 4, dig));
	char c[HK_CHALLENGE_MAX];
	hk_auth_challenge("mail.example.jp", c);
	assert_int_equal(c[0], '<');
	assert_non_null(strstr(c, "@mail.example.jp>"));
}

static void
test_apop_rfc1939(void **state)
{
	(void)state;
	const char *ts = "<1896.697170952@dbc.mtview.ca.us>";
	assert_true(hk_apop_verify("tanstaaf", 8, ts, "c4c9334bac560ecc979e58001b3e22fb"));
	assert_false(hk_apop_verify("tanstaag", 8, ts, "c4c9334bac560ecc979e58001b3e22fb"));
	assert_false(hk_apop_verify("tanstaaf", 8, "<1896.697170953@dbc.mtview.ca.us>", "c4c9334bac560ecc979e58001b3e22fb"));
	assert_false(hk_apop_verify("tanstaaf", 8, ts, ""));
}

/* --- secretbox --------------------------------------------------------------------------------------- */

static void
test_secretbox_roundtrip_and_tamper(void **state)
{
	(void)state;
	uint8_t key[32], key2[32];
	memset(key, 7, sizeof(key));
	memset(key2, 8, sizeof(key2));
	struct hk_secretbox *b = hk_secretbox_from_key(key), *b2 = hk_secretbox_from_key(key2);
	uint8_t box[64 + HK_SECRETBOX_OVERHEAD], pt[64];
	size_t bl, pl;
	assert_int_equal(hk_secretbox_seal(b, "u:x/y", 5, "tanstaaf", 8, box, sizeof(box), &bl), 0);
	assert_int_equal(bl, 8 + HK_SECRETBOX_OVERHEAD);
	assert_int_equal(hk_secretbox_open(b, "u:x/y", 5, box, bl, pt, sizeof(pt), &pl), 0);
	assert_int_equal(pl, 8);
	assert_memory_equal(pt, "tanstaaf", 8);
	/* two seals differ (nonce) */
	uint8_t box2[64 + HK_SECRETBOX_OVERHEAD];
	size_t bl2;
	assert_int_equal(hk_secretbox_seal(b, "u:x/y", 5, "tanstaaf", 8, box2, sizeof(box2), &bl2), 0);
	assert_memory_not_equal(box, box2, bl);
	/* other associated data, other key, every flipped byte, truncation */
	assert_int_equal(hk_secretbox_open(b, "u:x/z", 5, box, bl, pt, sizeof(pt), &pl), -1);
	assert_int_equal(errno, EBADMSG);
	assert_int_equal(hk_secretbox_open(b2, "u:x/y", 5, box, bl, pt, sizeof(pt), &pl), -1);
	assert_int_equal(errno, ENOKEY);
	for (size_t i = 0; i < bl; i++) {
		box[i] ^= 0x01;
		assert_int_equal(hk_secretbox_open(b, "u:x/y", 5, box, bl, pt, sizeof(pt), &pl), -1);
		box[i] ^= 0x01;
	}
	for (size_t n = 0; n < bl; n++)
		assert_int_equal(hk_secretbox_open(b, "u:x/y", 5, box, n, pt, sizeof(pt), &pl), -1);
	assert_int_equal(hk_secretbox_open(b, "u:x/y", 5, box, bl, pt, 4, &pl), -1);
	assert_int_equal(errno, ERANGE);
	assert_int_equal(hk_secretbox_seal(b, "", 0, "x", 1, box, 10, &bl), -1);
	hk_secretbox_free(&b);
	hk_secretbox_free(&b2);
	assert_null(b);
}

static void
test_secretbox_key_file_rules(void **state)
{
	(void)state;
	char dir[] = "/tmp/hk-secretbox-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256], err[300];
	snprintf(path, sizeof(path), "%s/keys/secret.key", dir);
	struct hk_secretbox *b = NULL;
	assert_int_equal(hk_secretbox_load(path, false, &b, err, sizeof(err)), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(hk_secretbox_load(path, true, &b, err, sizeof(err)), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	char kd[300];
	snprintf(kd, sizeof(kd), "%s/keys", dir);
	assert_int_equal(stat(kd, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* the same key when loaded again */
	struct hk_secretbox *b2 = NULL;
	assert_int_equal(hk_secretbox_load(path, true, &b2, err, sizeof(err)), 0);
	uint8_t box[64], pt[64];
	size_t bl, pl;
	assert_int_equal(hk_secretbox_seal(b, "a", 1, "secret", 6, box, sizeof(box), &bl), 0);
	assert_int_equal(hk_secretbox_open(b2, "a", 1, box, bl, pt, sizeof(pt), &pl), 0);
	hk_secretbox_free(&b2);
	/* readable by others: refused, with the fix in the message */
	chmod(path, 0644);
	assert_int_equal(hk_secretbox_load(path, true, &b2, err, sizeof(err)), -1);
	assert_int_equal(errno, EPERM);
	assert_non_null(strstr(err, "chmod 600"));
	assert_null(b2);
	chmod(path, 0640);
	assert_int_equal(hk_secretbox_load(path, true, &b2, err, sizeof(err)), -1);
	chmod(path, 0600);
	/* a symbolic link is refused */
	char link[300];
	snprintf(link, sizeof(link), "%s/link.key", dir);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(hk_secretbox_load(link, true, &b2, err, sizeof(err)), -1);
	assert_int_equal(errno, EPERM);
	/* not a key */
	char junk[300];
	snprintf(junk, sizeof(junk), "%s/junk.key", dir);
	FILE *f = fopen(junk, "w");
	fputs("not hex at all\n", f);
	fclose(f);
	chmod(junk, 0600);
	assert_int_equal(hk_secretbox_load(junk, true, &b2, err, sizeof(err)), -1);
	assert_int_equal(errno, EINVAL);
	hk_secretbox_free(&b);
	unlink(junk);
	unlink(link);
	unlink(path);
	rmdir(kd);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_password_hash_verify_yescrypt),
		cmocka_unit_test(test_password_verify_cached),
		cmocka_unit_test(test_password_known_answers_imports),
		cmocka_unit_test(test_password_verify_bad_hashes),
		cmocka_unit_test(test_password_policy),
		cmocka_unit_test(test_saslprep_rfc4013_examples),
		cmocka_unit_test(test_base64_strict),
		cmocka_unit_test(test_scram_rfc7677_vector),
		cmocka_unit_test(test_scram_exchange_outcomes),
		cmocka_unit_test(test_scram_malformed_messages),
		cmocka_unit_test(test_scram_keys_limits),
		cmocka_unit_test(test_cram_md5_rfc2195),
		cmocka_unit_test(test_apop_rfc1939),
		cmocka_unit_test(test_secretbox_roundtrip_and_tamper),
		cmocka_unit_test(test_secretbox_key_file_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
