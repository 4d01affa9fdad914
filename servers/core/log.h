/*
 * log.h - the servers' log: one line per event on stderr (the service
 * manager or `make run` captures it), "time level [component] message".
 * Peer-provided text is sanitised by the caller with log_safe.
 */
#ifndef HK_LOG_H
#define HK_LOG_H

#include <stddef.h>

#include "util.h"

enum log_level { LOG_L_DEBUG, LOG_L_INFO, LOG_L_WARN, LOG_L_ERROR };

void log_set_level(enum log_level l);
void log_msg(enum log_level l, const char *component, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define log_info(c, ...) log_msg(LOG_L_INFO, c, __VA_ARGS__)
#define log_warnx(c, ...) log_msg(LOG_L_WARN, c, __VA_ARGS__)
#define log_error(c, ...) log_msg(LOG_L_ERROR, c, __VA_ARGS__)
#define log_debug(c, ...) log_msg(LOG_L_DEBUG, c, __VA_ARGS__)

/* Printable, bounded copy of peer text for logging (STYLE.md §5.10):
 * control bytes become '?', at most max bytes are kept. */
const char *log_safe(struct hk_buf *b, const char *s, size_t len, size_t max);

#endif
