/*
 * imapd_content.c - a selected message's bytes for FETCH and SEARCH
 * (worker side): read into memory when small, mapped when large (then
 * only the pages a view touches are read: ENVELOPE of a 50 MB message
 * reads its header), and wrapped in the message views' imap_msg.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "imapd_int.h"

#define CONTENT_READ_MAX (128 * 1024) /* read() below, mmap() above */

int
imapd_content_load(struct imapd_session *s, size_t i, struct imapd_content *c)
{
	memset(c, 0, sizeof(*c));
	int fd = imapd_open_message(s, i);
	if (fd < 0)
		return -1;
	if (fstat(fd, &c->sb) < 0) {
		close(fd);
		return -1;
	}
	size_t size = (size_t)c->sb.st_size;
	if (size <= CONTENT_READ_MAX) {
		c->buf = xmalloc(size + 1);
		size_t got = 0;
		while (got < size) {
			ssize_t r = pread(fd, c->buf + got, size - got, (off_t)got);
			if (r <= 0) {
				if (r < 0 && errno == EINTR)
					continue;
				break; /* shorter than its stat: what is there counts */
			}
			got += (size_t)r;
		}
		c->len = got;
	} else {
		c->map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (c->map == MAP_FAILED) {
			c->map = NULL;
			close(fd);
			return -1;
		}
		c->len = size;
	}
	close(fd);
	imap_msg_init(&c->msg, c->map ? c->map : c->buf, c->len);
	c->have = true;
	return 0;
}

int
imapd_stat_message(struct imapd_session *s, size_t i, struct stat *sb)
{
	int fd = imapd_open_message(s, i);
	if (fd < 0)
		return -1;
	int rc = fstat(fd, sb);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

char *
imapd_content_free(struct imapd_content *c, bool keep_map)
{
	char *kept = NULL;
	if (c->have)
		imap_msg_fini(&c->msg);
	free(c->buf);
	if (c->map && keep_map)
		kept = c->map;
	else if (c->map)
		munmap(c->map, c->len);
	memset(c, 0, sizeof(*c));
	return kept;
}
