/*
 * scram.c - SCRAM-SHA-256 server side (RFC 5802, RFC 7677), strict base64
 * for SASL, and the CRAM-MD5 / APOP helpers. See scram.h.
 *
 * The maths is OpenSSL's (PBKDF2-HMAC-SHA256, HMAC, SHA-256, RAND_bytes);
 * SASLprep (RFC 4013) is libidn's stringprep profile.
 *
 * SECURITY: parses client messages. Each is length-checked against
 * HK_SCRAM_MSG_MAX before anything else, attributes are scanned in place
 * with explicit bounds, and every secret comparison uses CRYPTO_memcmp.
 */
#include "scram.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stringprep.h>

/* --- base64 ------------------------------------------------------------------------ */

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
hk_b64_encode(const void *in, size_t len, struct hk_buf *out)
{
	const uint8_t *p = in;
	buf_reserve(out, (len + 2) / 3 * 4 + 1);
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		char q[4] = { b64_alphabet[(v >> 18) & 63], b64_alphabet[(v >> 12) & 63],
			i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=', i + 2 < len ? b64_alphabet[v & 63] : '=' };
		buf_add(out, q, 4);
	}
	if (len == 0)
		buf_add(out, "", 0);
}

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

bool
hk_b64_decode(const char *in, size_t len, struct hk_buf *out)
{
	if (len % 4 != 0)
		return false;
	buf_reserve(out, len / 4 * 3 + 1);
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + k];
			if (c == '=' && i + 4 == len && k >= 2) {
				/* "xx==" or "xxx=": padding only at the end */
				if (k == 2 && in[i + 3] != '=')
					return false;
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad)
				return false;
			v[k] = b64_value(c);
			if (v[k] < 0)
				return false;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
		uint8_t o[3] = { (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w };
		/* canonical encoding: the bits under the padding are zero */
		if ((pad == 1 && (w & 0xFF) != 0) || (pad == 2 && (w & 0xFFFF) != 0))
			return false;
		buf_add(out, o, (size_t)(3 - pad));
	}
	if (len == 0)
		buf_add(out, "", 0);
	return true;
}

/* --- keys --------------------------------------------------------------------------------- */

int
hk_saslprep(const char *in, char **out_r)
{
	*out_r = NULL;
	char *out = NULL;
	int rc = stringprep_profile(in, &out, "SASLprep", STRINGPREP_NO_UNASSIGNED);
	if (rc != STRINGPREP_OK) {
		free(out);
		errno = EINVAL;
		return -1;
	}
	*out_r = out;
	return 0;
}

static void
hmac256(const uint8_t *key, size_t klen, const void *data, size_t len, uint8_t out[HK_SCRAM_KEY_LEN])
{
	unsigned int olen = HK_SCRAM_KEY_LEN;
	HMAC(EVP_sha256(), key, (int)klen, data, len, out, &olen);
}

int
hk_scram_keys_derive(const char *password, const uint8_t *salt, size_t salt_len, uint32_t iterations,
    struct hk_scram_keys *out)
{
	if (salt_len < HK_SCRAM_SALT_MIN || salt_len > HK_SCRAM_SALT_MAX || iterations < HK_SCRAM_ITER_MIN ||
	    iterations > HK_SCRAM_ITER_MAX) {
		errno = EINVAL;
		return -1;
	}
	char *prepped;
	if (hk_saslprep(password, &prepped) < 0)
		return -1;
	uint8_t salted[HK_SCRAM_KEY_LEN], client_key[HK_SCRAM_KEY_LEN];
	int ok = PKCS5_PBKDF2_HMAC(prepped, (int)strlen(prepped), salt, (int)salt_len, (int)iterations, EVP_sha256(),
	    HK_SCRAM_KEY_LEN, salted);
	OPENSSL_cleanse(prepped, strlen(prepped));
	free(prepped);
	if (!ok) {
		errno = EIO;
		return -1;
	}
	memset(out, 0, sizeof(*out));
	out->iterations = iterations;
	out->salt_len = (uint8_t)salt_len;
	memcpy(out->salt, salt, salt_len);
	hmac256(salted, sizeof(salted), "Client Key", 10, client_key);
	SHA256(client_key, sizeof(client_key), out->stored_key);
	hmac256(salted, sizeof(salted), "Server Key", 10, out->server_key);
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return 0;
}

int
hk_scram_keys_new(const char *password, uint32_t iterations, struct hk_scram_keys *out)
{
	uint8_t salt[HK_SCRAM_SALT_LEN];
	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		errno = EIO;
		return -1;
	}
	return hk_scram_keys_derive(password, salt, sizeof(salt), iterations, out);
}

bool
hk_scram_keys_valid(const struct hk_scram_keys *k)
{
	return k->salt_len >= HK_SCRAM_SALT_MIN && k->salt_len <= HK_SCRAM_SALT_MAX &&
	    k->iterations >= HK_SCRAM_ITER_MIN && k->iterations <= HK_SCRAM_ITER_MAX;
}

/* --- the exchange ------------------------------------------------------------------------- */

enum scram_state { SCRAM_START, SCRAM_GOT_FIRST, SCRAM_SENT_FIRST, SCRAM_DONE };

struct hk_scram_server {
	enum scram_state state;
	bool plus;
	const struct hk_scram_cb *cb;
	uint32_t fake_iterations;
	char gs2_header[HK_SCRAM_MSG_MAX + 1]; /* "n,," / "y,a=x," / "p=tls-exporter,," */
	size_t gs2_len;
	char cbind_flag;                        /* 'n', 'y' or 'p' */
	char username[HK_SCRAM_USER_MAX + 1];
	char authzid[HK_SCRAM_USER_MAX + 1];
	struct hk_buf client_first_bare, server_first;
	char nonce[HK_SCRAM_NONCE_MAX + 64];    /* client nonce + server nonce */
	char server_nonce_override[64];
	bool known;                             /* real keys, not a fake */
	struct hk_scram_keys keys;
};

struct hk_scram_server *
hk_scram_server_new(const struct hk_scram_opts *opts)
{
	struct hk_scram_server *s = xcalloc(1, sizeof(*s));
	s->plus = opts && opts->plus;
	s->cb = opts ? opts->cb : NULL;
	s->fake_iterations = opts && opts->fake_iterations ? opts->fake_iterations : HK_SCRAM_ITERATIONS_DEFAULT;
	buf_init(&s->client_first_bare);
	buf_init(&s->server_first);
	return s;
}

void
hk_scram_server_free(struct hk_scram_server **sp)
{
	struct hk_scram_server *s = *sp;
	if (s == NULL)
		return;
	buf_fini(&s->client_first_bare);
	buf_fini(&s->server_first);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
	*sp = NULL;
}

void
hk_scram_server_set_nonce(struct hk_scram_server *s, const char *nonce)
{
	snprintf(s->server_nonce_override, sizeof(s->server_nonce_override), "%s", nonce);
}

const char *
hk_scram_server_username(const struct hk_scram_server *s)
{
	return s->username;
}

const char *
hk_scram_server_authzid(const struct hk_scram_server *s)
{
	return s->authzid;
}

/* saslname: "=2C" is ',', "=3D" is '='; any other '=' and NUL are errors. */
static bool
decode_saslname(const char *p, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '\0' || c == ',')
			return false;
		if (c == '=') {
			if (n - i < 3)
				return false;
			if (p[i + 1] == '2' && p[i + 2] == 'C')
				c = ',';
			else if (p[i + 1] == '3' && p[i + 2] == 'D')
				c = '=';
			else
				return false;
			i += 2;
		}
		if (o + 1 >= cap)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return true;
}

/* A cursor over the comma-separated attributes of a message. */
struct fields {
	const char *p, *end;
	bool done;
};

static bool
next_field(struct fields *c, const char **f, size_t *flen)
{
	if (c->done)
		return false;
	const char *comma = memchr(c->p, ',', (size_t)(c->end - c->p));
	*f = c->p;
	*flen = (size_t)((comma ? comma : c->end) - c->p);
	if (comma) {
		c->p = comma + 1;
	} else {
		c->p = c->end;
		c->done = true;
	}
	return true;
}

static bool
printable_nonce(const char *p, size_t n)
{
	if (n == 0 || n > HK_SCRAM_NONCE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7E || p[i] == ',')
			return false;
	return true;
}

enum hk_scram_status
hk_scram_server_client_first(struct hk_scram_server *s, const char *msg, size_t len)
{
	if (s->state != SCRAM_START || len == 0 || len > HK_SCRAM_MSG_MAX || memchr(msg, '\0', len))
		return HK_SCRAM_BAD;
	s->state = SCRAM_DONE; /* until this message is accepted */
	struct fields c = { msg, msg + len, false };
	const char *f;
	size_t fl;

	/* gs2-cbind-flag */
	if (!next_field(&c, &f, &fl))
		return HK_SCRAM_BAD;
	if (fl == 1 && (f[0] == 'n' || f[0] == 'y')) {
		s->cbind_flag = f[0];
	} else if (fl > 2 && f[0] == 'p' && f[1] == '=') {
		s->cbind_flag = 'p';
		for (size_t i = 2; i < fl; i++) {
			char ch = f[i];
			if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
			        ch == '-'))
				return HK_SCRAM_BAD;
		}
		if (!s->plus)
			return HK_SCRAM_BAD; /* binding requested with the non-PLUS mechanism */
		if (s->cb == NULL || s->cb->type == NULL || strlen(s->cb->type) != fl - 2 ||
		    memcmp(s->cb->type, f + 2, fl - 2) != 0 || s->cb->len > HK_SCRAM_CB_MAX)
			return HK_SCRAM_FAIL; /* unsupported channel-binding type */
	} else {
		return HK_SCRAM_BAD;
	}
	if (s->plus && s->cbind_flag != 'p')
		return HK_SCRAM_BAD; /* -PLUS without binding */
	if (s->cbind_flag == 'y' && s->cb != NULL)
		return HK_SCRAM_FAIL; /* the client thinks we cannot bind: a downgrade */

	/* authzid */
	if (!next_field(&c, &f, &fl))
		return HK_SCRAM_BAD;
	if (fl > 0) {
		if (fl < 3 || f[0] != 'a' || f[1] != '=' || !decode_saslname(f + 2, fl - 2, s->authzid, sizeof(s->authzid)))
			return HK_SCRAM_BAD;
	}
	if (c.done)
		return HK_SCRAM_BAD;
	s->gs2_len = (size_t)(c.p - msg);
	memcpy(s->gs2_header, msg, s->gs2_len);
	s->gs2_header[s->gs2_len] = '\0';

	/* client-first-message-bare */
	const char *bare = c.p;
	if (!next_field(&c, &f, &fl))
		return HK_SCRAM_BAD;
	if (fl >= 2 && f[0] == 'm' && f[1] == '=')
		return HK_SCRAM_BAD; /* mandatory extension we do not know */
	if (fl < 3 || f[0] != 'n' || f[1] != '=' || !decode_saslname(f + 2, fl - 2, s->username, sizeof(s->username)))
		return HK_SCRAM_BAD;
	if (!next_field(&c, &f, &fl) || fl < 3 || f[0] != 'r' || f[1] != '=' || !printable_nonce(f + 2, fl - 2))
		return HK_SCRAM_BAD;
	memcpy(s->nonce, f + 2, fl - 2);
	s->nonce[fl - 2] = '\0';
	/* optional extensions: attr=value each, ignored */
	while (next_field(&c, &f, &fl))
		if (fl < 2 || f[1] != '=' || !((f[0] >= 'a' && f[0] <= 'z') || (f[0] >= 'A' && f[0] <= 'Z')))
			return HK_SCRAM_BAD;
	buf_reset(&s->client_first_bare);
	buf_add(&s->client_first_bare, bare, (size_t)(c.end - bare));
	s->state = SCRAM_GOT_FIRST;
	return HK_SCRAM_CONTINUE;
}

/* A salt for unknown users: HMAC(process secret, username), stable for the
 * process so that repeated probes see the same value. */
static uint8_t fake_secret[32];
static pthread_once_t fake_once = PTHREAD_ONCE_INIT;

static void
fake_init(void)
{
	if (RAND_bytes(fake_secret, sizeof(fake_secret)) != 1)
		for (size_t i = 0; i < sizeof(fake_secret); i++)
			fake_secret[i] = (uint8_t)(rand() ^ (int)time(NULL));
}

enum hk_scram_status
hk_scram_server_first(struct hk_scram_server *s, const struct hk_scram_keys *keys, struct hk_buf *out)
{
	if (s->state != SCRAM_GOT_FIRST)
		return HK_SCRAM_BAD;
	if (keys && hk_scram_keys_valid(keys)) {
		s->keys = *keys;
		s->known = true;
	} else {
		pthread_once(&fake_once, fake_init);
		uint8_t h[HK_SCRAM_KEY_LEN];
		hmac256(fake_secret, sizeof(fake_secret), s->username, strlen(s->username), h);
		memset(&s->keys, 0, sizeof(s->keys));
		memcpy(s->keys.salt, h, HK_SCRAM_SALT_LEN);
		s->keys.salt_len = HK_SCRAM_SALT_LEN;
		s->keys.iterations = s->fake_iterations;
		RAND_bytes(s->keys.stored_key, sizeof(s->keys.stored_key));
		RAND_bytes(s->keys.server_key, sizeof(s->keys.server_key));
		s->known = false;
	}
	size_t cn = strlen(s->nonce);
	if (s->server_nonce_override[0]) {
		snprintf(s->nonce + cn, sizeof(s->nonce) - cn, "%s", s->server_nonce_override);
	} else {
		uint8_t r[18];
		if (RAND_bytes(r, sizeof(r)) != 1)
			return HK_SCRAM_BAD;
		struct hk_buf b;
		buf_init(&b);
		hk_b64_encode(r, sizeof(r), &b); /* 24 chars, never ',' */
		snprintf(s->nonce + cn, sizeof(s->nonce) - cn, "%s", b.data);
		buf_fini(&b);
	}
	buf_reset(&s->server_first);
	buf_adds(&s->server_first, "r=");
	buf_adds(&s->server_first, s->nonce);
	buf_adds(&s->server_first, ",s=");
	hk_b64_encode(s->keys.salt, s->keys.salt_len, &s->server_first);
	buf_printf(&s->server_first, ",i=%u", (unsigned)s->keys.iterations);
	buf_add(out, s->server_first.data, s->server_first.len);
	s->state = SCRAM_SENT_FIRST;
	return HK_SCRAM_CONTINUE;
}

static enum hk_scram_status
fail(struct hk_scram_server *s, struct hk_buf *out, const char *e)
{
	s->state = SCRAM_DONE;
	buf_adds(out, "e=");
	buf_adds(out, e);
	return HK_SCRAM_FAIL;
}

enum hk_scram_status
hk_scram_server_final(struct hk_scram_server *s, const char *msg, size_t len, struct hk_buf *out)
{
	if (s->state != SCRAM_SENT_FIRST || len == 0 || len > HK_SCRAM_MSG_MAX || memchr(msg, '\0', len)) {
		s->state = SCRAM_DONE;
		return HK_SCRAM_BAD;
	}
	s->state = SCRAM_DONE;
	struct fields c = { msg, msg + len, false };
	const char *f;
	size_t fl;
	struct hk_buf tmp;
	buf_init(&tmp);
	enum hk_scram_status st = HK_SCRAM_BAD;

	/* channel-binding "c=" */
	if (!next_field(&c, &f, &fl) || fl < 2 || f[0] != 'c' || f[1] != '=')
		goto out;
	if (!hk_b64_decode(f + 2, fl - 2, &tmp)) {
		st = fail(s, out, "invalid-encoding");
		goto out;
	}
	{
		size_t cb_len = s->cbind_flag == 'p' ? s->cb->len : 0;
		bool match = tmp.len == s->gs2_len + cb_len && memcmp(tmp.data, s->gs2_header, s->gs2_len) == 0 &&
		    (cb_len == 0 || CRYPTO_memcmp(tmp.data + s->gs2_len, s->cb->data, cb_len) == 0);
		if (!match) {
			st = fail(s, out, "channel-bindings-dont-match");
			goto out;
		}
	}
	/* nonce */
	if (!next_field(&c, &f, &fl) || fl < 2 || f[0] != 'r' || f[1] != '=')
		goto out;
	if (fl - 2 != strlen(s->nonce) || memcmp(f + 2, s->nonce, fl - 2) != 0) {
		st = fail(s, out, "other-error");
		goto out;
	}
	/* extensions, then the proof, which must be last */
	const char *without_proof_end = NULL;
	const char *proof = NULL;
	size_t proof_len = 0;
	while (next_field(&c, &f, &fl)) {
		if (fl < 2 || f[1] != '=')
			goto out;
		if (f[0] == 'p') {
			if (!c.done)
				goto out; /* something after the proof */
			without_proof_end = f - 1;
			proof = f + 2;
			proof_len = fl - 2;
		}
	}
	if (proof == NULL)
		goto out;
	buf_reset(&tmp);
	if (!hk_b64_decode(proof, proof_len, &tmp) || tmp.len != HK_SCRAM_KEY_LEN) {
		st = fail(s, out, "invalid-encoding");
		goto out;
	}

	struct hk_buf auth;
	buf_init(&auth);
	buf_add(&auth, s->client_first_bare.data, s->client_first_bare.len);
	buf_addc(&auth, ',');
	buf_add(&auth, s->server_first.data, s->server_first.len);
	buf_addc(&auth, ',');
	buf_add(&auth, msg, (size_t)(without_proof_end - msg));

	uint8_t client_sig[HK_SCRAM_KEY_LEN], client_key[HK_SCRAM_KEY_LEN], stored[HK_SCRAM_KEY_LEN];
	hmac256(s->keys.stored_key, HK_SCRAM_KEY_LEN, auth.data, auth.len, client_sig);
	for (int i = 0; i < HK_SCRAM_KEY_LEN; i++)
		client_key[i] = (uint8_t)tmp.data[i] ^ client_sig[i];
	SHA256(client_key, sizeof(client_key), stored);
	bool ok = CRYPTO_memcmp(stored, s->keys.stored_key, HK_SCRAM_KEY_LEN) == 0 && s->known;
	if (s->authzid[0] && strcmp(s->authzid, s->username) != 0)
		ok = false;
	if (ok) {
		uint8_t server_sig[HK_SCRAM_KEY_LEN];
		hmac256(s->keys.server_key, HK_SCRAM_KEY_LEN, auth.data, auth.len, server_sig);
		buf_adds(out, "v=");
		hk_b64_encode(server_sig, sizeof(server_sig), out);
		st = HK_SCRAM_OK;
	} else {
		st = fail(s, out, "invalid-proof");
	}
	OPENSSL_cleanse(client_key, sizeof(client_key));
	buf_fini(&auth);
out:
	buf_fini(&tmp);
	return st;
}

/* --- CRAM-MD5 and APOP -------------------------------------------------------------------- */

void
hk_auth_challenge(const char *host, char out[HK_CHALLENGE_MAX])
{
	uint64_t r = 0;
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint64_t)rand();
	snprintf(out, HK_CHALLENGE_MAX, "<%llu.%lld@%.200s>", (unsigned long long)(r % 10000000000000ull),
	    (long long)time(NULL), host && *host ? host : "localhost");
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
hex16(const char *hex, uint8_t out[16])
{
	if (hex == NULL || strlen(hex) != 32)
		return false;
	for (int i = 0; i < 16; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

bool
hk_cram_md5_split(const char *resp, char *user, size_t user_cap, char digest[33])
{
	const char *sp = strrchr(resp, ' ');
	if (sp == NULL || sp == resp || strlen(sp + 1) != 32)
		return false;
	size_t ul = (size_t)(sp - resp);
	if (ul + 1 > user_cap)
		return false;
	memcpy(user, resp, ul);
	user[ul] = '\0';
	memcpy(digest, sp + 1, 33);
	uint8_t tmp[16];
	return hex16(digest, tmp);
}

bool
hk_cram_md5_verify(const void *secret, size_t secret_len, const char *challenge, const char *digest_hex)
{
	uint8_t want[16], got[EVP_MAX_MD_SIZE];
	unsigned int glen = 0;
	if (!hex16(digest_hex, want))
		return false;
	if (HMAC(EVP_md5(), secret, (int)secret_len, (const unsigned char *)challenge, strlen(challenge), got, &glen) ==
	        NULL ||
	    glen != 16)
		return false;
	return CRYPTO_memcmp(want, got, 16) == 0;
}

bool
hk_apop_verify(const void *secret, size_t secret_len, const char *timestamp, const char *digest_hex)
{
	uint8_t want[16], got[EVP_MAX_MD_SIZE];
	unsigned int glen = 0;
	if (!hex16(digest_hex, want))
		return false;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) && EVP_DigestUpdate(ctx, timestamp, strlen(timestamp)) &&
	    EVP_DigestUpdate(ctx, secret, secret_len) && EVP_DigestFinal_ex(ctx, got, &glen) && glen == 16;
	EVP_MD_CTX_free(ctx);
	return ok && CRYPTO_memcmp(want, got, 16) == 0;
}
