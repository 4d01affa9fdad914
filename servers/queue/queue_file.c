/*
 * queue_file.c - reading and writing queue entries and their state (see
 * queue_file.h). Everything here blocks: call it from a worker or the CLI.
 */
#include "queue_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copies at most size-1 bytes and terminates; false when cut. */
static bool
copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size);
	bool fits = n < size;
	if (!fits)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return fits;
}

bool
qfile_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > QFILE_MAX_NAME || name[0] == '.' || (n > 3 && strcmp(name + n - 3, ".st") == 0))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* "key value\n"; addresses may hold no '<' or '>', xtext values may */
static bool
take_value(const char **p, const char *end, const char *key, char *out, size_t outsz, bool angles_ok)
{
	size_t kl = strlen(key);
	if ((size_t)(end - *p) < kl + 1 || memcmp(*p, key, kl) != 0 || (*p)[kl] != ' ')
		return false;
	const char *v = *p + kl + 1;
	const char *nl = memchr(v, '\n', (size_t)(end - v));
	if (nl == NULL || (size_t)(nl - v) >= outsz)
		return false;
	memcpy(out, v, (size_t)(nl - v));
	out[nl - v] = '\0';
	for (char *c = out; *c; c++)
		if ((unsigned char)*c < 0x20 || (!angles_ok && (*c == '<' || *c == '>')))
			return false;
	*p = nl + 1;
	return true;
}

static bool
take_field(const char **p, const char *end, const char *key, char *out, size_t outsz)
{
	return take_value(p, end, key, out, outsz, false);
}

int
qfile_parse_head(const char *buf, size_t len, struct qfile_head *h)
{
	const char *p = buf, *end = buf + (len < QFILE_MAX_HEAD ? len : QFILE_MAX_HEAD);
	char created[32];
	memset(h, 0, sizeof(*h));
	if ((size_t)(end - p) < 5 || memcmp(p, "HKQ1\n", 5) != 0)
		goto bad;
	p += 5;
	if (!take_field(&p, end, "kind", h->kind, sizeof(h->kind)) || !take_field(&p, end, "from", h->from, sizeof(h->from)) ||
	    !take_field(&p, end, "to", h->to, sizeof(h->to)) || !take_field(&p, end, "created", created, sizeof(created)))
		goto bad;
	char *e;
	h->created = strtoll(created, &e, 10);
	if (*e != '\0' || h->to[0] == '\0')
		goto bad;
	/* optional DSN lines (absent in entries of older versions) */
	char v[SMTP_DSN_MAX_ORCPT + 1];
	if (take_field(&p, end, "ret", v, sizeof(v)) && !smtp_dsn_ret_parse((struct hk_str){ v, strlen(v) }, &h->ret))
		goto bad;
	if (take_value(&p, end, "envid", v, sizeof(v), true)) {
		if (!smtp_dsn_envid_ok((struct hk_str){ v, strlen(v) }))
			goto bad;
		memcpy(h->envid, v, strlen(v) + 1);
	}
	if (take_field(&p, end, "notify", v, sizeof(v)) && !smtp_dsn_notify_parse((struct hk_str){ v, strlen(v) }, &h->notify))
		goto bad;
	if (take_value(&p, end, "orcpt", v, sizeof(v), true)) {
		if (!smtp_dsn_orcpt_ok((struct hk_str){ v, strlen(v) }))
			goto bad;
		memcpy(h->orcpt, v, strlen(v) + 1);
	}
	if (p >= end || *p != '\n')
		goto bad;
	h->body_off = (size_t)(p + 1 - buf);
	return 0;
bad:
	errno = EBADMSG;
	return -1;
}

void
qfile_format_head(struct hk_buf *out, const struct qfile_head *h)
{
	buf_printf(out, "HKQ1\nkind %s\nfrom %s\nto %s\ncreated %lld\n", h->kind, h->from, h->to, h->created);
	if (h->ret != SMTP_DSN_RET_NONE)
		buf_adds(out, h->ret == SMTP_DSN_RET_FULL ? "ret FULL\n" : "ret HDRS\n");
	if (h->envid[0])
		buf_printf(out, "envid %s\n", h->envid);
	if (h->notify) {
		char n[32];
		buf_printf(out, "notify %s\n", smtp_dsn_notify_str(h->notify, n));
	}
	if (h->orcpt[0])
		buf_printf(out, "orcpt %s\n", h->orcpt);
	buf_addc(out, '\n');
}

int
qfile_read_head(const char *path, struct qfile_head *h, size_t *size_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	char buf[QFILE_MAX_HEAD];
	ssize_t n = read(fd, buf, sizeof(buf));
	struct stat st;
	int rc = n < 0 || fstat(fd, &st) < 0 ? -1 : qfile_parse_head(buf, (size_t)n, h);
	int e = errno;
	close(fd);
	if (rc == 0 && size_r)
		*size_r = (size_t)st.st_size - h->body_off;
	errno = e;
	return rc;
}

int
qfile_state_read(const char *dir, const char *name, struct qfile_state *s)
{
	memset(s, 0, sizeof(*s));
	s->attempts = 1;
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s.st", dir, name);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return errno == ENOENT ? 0 : -1;
	char line[QFILE_MAX_ERROR + 16];
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "attempts ", 9) == 0)
			s->attempts = (unsigned)strtoul(line + 9, NULL, 10);
		else if (strncmp(line, "next ", 5) == 0)
			s->next = strtoll(line + 5, NULL, 10);
		else if (strncmp(line, "error ", 6) == 0)
			copy_str(s->error, sizeof(s->error), line + 6);
		else if (strcmp(line, "warned 1") == 0)
			s->delay_warned = true;
	}
	fclose(f);
	return 0;
}

int
qfile_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

int
qfile_state_write(const char *dir, const char *name, const struct qfile_state *s)
{
	char tmp[4096], fin[4096], err[QFILE_MAX_ERROR];
	snprintf(tmp, sizeof(tmp), "%s/.%s.st.tmp", dir, name);
	snprintf(fin, sizeof(fin), "%s/%s.st", dir, name);
	size_t i = 0;
	for (; s->error[i] && i < sizeof(err) - 1; i++)
		err[i] = (unsigned char)s->error[i] < 0x20 ? ' ' : s->error[i];
	err[i] = '\0';
	FILE *f = fopen(tmp, "we");
	if (f == NULL)
		return -1;
	fprintf(f, "attempts %u\nnext %lld\nerror %s\n%s", s->attempts, s->next, err, s->delay_warned ? "warned 1\n" : "");
	bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, fin) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}
