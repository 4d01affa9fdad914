/*
 * maildir_keywords.c - IMAP keywords of a Maildir folder in Dovecot's
 * "dovecot-keywords" file: one line "<index> <keyword>" per assigned
 * letter, index 0-25 for 'a'-'z' in the ":2," info of file names.
 *
 * Changes take Dovecot's dotlock: "dovecot-keywords.lock" created with
 * O_EXCL, the new contents written into it, fsync-ed and renamed over the
 * file; a lock older than MAILDIR_LOCK_STALE_SECS is stale and broken.
 * Letters are never reassigned, so a file name's letters keep their
 * meaning; with all 26 taken a new keyword is dropped from the message
 * (the message itself is still delivered).
 *
 * SECURITY: the file may have been written by another program: read with
 * a size cap, bad lines ignored, keywords checked like the language's
 * `flag` (1-64 printable ASCII, no blanks or IMAP specials).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "maildir.h"

static bool
keyword_ok(const char *s, size_t n)
{
	if (n == 0 || n > HK_STORE_KEYWORD_LEN_MAX || s[0] == '\\')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c >= 0x7F || strchr("(){%*\"\\]", c))
			return false;
	}
	return true;
}

static void
names_free(char *names[HK_STORE_KEYWORDS_MAX])
{
	for (int i = 0; i < HK_STORE_KEYWORDS_MAX; i++) {
		free(names[i]);
		names[i] = NULL;
	}
}

int
maildir_keywords_read(const char *dir, char *names[HK_STORE_KEYWORDS_MAX])
{
	memset(names, 0, HK_STORE_KEYWORDS_MAX * sizeof *names);
	char *path = xasprintf("%s/dovecot-keywords", dir);
	char *data;
	size_t len;
	int r = read_file(path, MAILDIR_KEYWORDS_FILE_MAX, &data, &len);
	free(path);
	if (r != 0)
		return errno == ENOENT ? 0 : -1;
	for (char *line = data; line < data + len;) {
		char *nl = memchr(line, '\n', (size_t)(data + len - line));
		char *end = nl ? nl : data + len;
		char *sp = memchr(line, ' ', (size_t)(end - line));
		if (sp && sp > line && sp - line <= 2) {
			int idx = 0;
			bool digits = true;
			for (char *p = line; p < sp; p++) {
				digits &= *p >= '0' && *p <= '9';
				idx = idx * 10 + (*p - '0');
			}
			const char *kw = sp + 1;
			size_t kl = (size_t)(end - kw);
			if (digits && idx < HK_STORE_KEYWORDS_MAX && names[idx] == NULL && keyword_ok(kw, kl))
				names[idx] = xstrndup(kw, kl);
		}
		line = end + 1;
	}
	free(data);
	return 0;
}

static uint32_t
lookup(char *names[HK_STORE_KEYWORDS_MAX], const char *const *kw, size_t n, bool *missing_r)
{
	uint32_t letters = 0;
	*missing_r = false;
	for (size_t k = 0; k < n; k++) {
		if (!keyword_ok(kw[k], strlen(kw[k])))
			continue;
		int found = -1;
		for (int i = 0; i < HK_STORE_KEYWORDS_MAX && found < 0; i++)
			if (names[i] && strcasecmp(names[i], kw[k]) == 0)
				found = i;
		if (found >= 0)
			letters |= 1u << found;
		else
			*missing_r = true;
	}
	return letters;
}

/* Takes the dotlock: the lock file's fd, or -1 (timeout, or an error). */
static int
lock_take(const char *lock)
{
	struct timespec pause = { 0, 10 * 1000 * 1000 };
	for (int waited = 0; waited <= MAILDIR_LOCK_WAIT_MS; waited += 10) {
		int fd = store_open_excl(AT_FDCWD, lock, lock);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -1;
		struct stat sb;
		if (stat(lock, &sb) == 0 && time(NULL) - sb.st_mtime > MAILDIR_LOCK_STALE_SECS) {
			(void)unlink(lock);
			continue;
		}
		nanosleep(&pause, NULL);
	}
	return errno = EAGAIN, -1;
}

int
maildir_keywords_assign(struct hk_store *st, const char *dir, const char *const *kw, size_t n, uint32_t *letters_r)
{
	char *names[HK_STORE_KEYWORDS_MAX];
	bool missing;
	*letters_r = 0;
	if (maildir_keywords_read(dir, names) != 0)
		return store_fail(st, errno, "reading %s/dovecot-keywords", dir);
	*letters_r = lookup(names, kw, n, &missing);
	if (!missing) {
		names_free(names);
		return 0;
	}
	names_free(names);

	char *lock = xasprintf("%s/dovecot-keywords.lock", dir);
	char *path = xasprintf("%s/dovecot-keywords", dir);
	int rc = -1;
	int fd = lock_take(lock);
	if (fd < 0) {
		store_fail(st, errno, "locking %s", lock);
		goto out;
	}
	/* read again under the lock: another writer may have added some */
	if (maildir_keywords_read(dir, names) != 0) {
		store_fail(st, errno, "reading %s", path);
		goto unlock;
	}
	for (size_t k = 0; k < n; k++) {
		if (!keyword_ok(kw[k], strlen(kw[k])))
			continue;
		bool have = false;
		for (int i = 0; i < HK_STORE_KEYWORDS_MAX && !have; i++)
			have = names[i] && strcasecmp(names[i], kw[k]) == 0;
		for (int i = 0; i < HK_STORE_KEYWORDS_MAX && !have; i++)
			if (names[i] == NULL) {
				names[i] = xstrdup(kw[k]);
				have = true;
			}
	}
	struct hk_buf out;
	buf_init(&out);
	for (int i = 0; i < HK_STORE_KEYWORDS_MAX; i++)
		if (names[i])
			buf_printf(&out, "%d %s\n", i, names[i]);
	if (store_write_all(fd, out.data, out.len, lock) != 0 || store_fsync(fd, lock) != 0) {
		store_fail(st, errno, "writing %s", lock);
	} else if (rename(lock, path) != 0) {
		store_fail(st, errno, "rename(%s, %s)", lock, path);
	} else {
		rc = 0;
		*letters_r = lookup(names, kw, n, &missing);
	}
	buf_fini(&out);
	names_free(names);
unlock:
	close(fd);
	if (rc != 0)
		(void)unlink(lock);
out:
	free(lock);
	free(path);
	return rc;
}
