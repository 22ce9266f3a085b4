/* log.h - shoald's log lines on stderr: "2026-11-26T23:01:29Z info: ...". */
#ifndef SHOAL_LOG_H
#define SHOAL_LOG_H

void log_set_verbose(int on);
void log_msg(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_debug_(__VA_ARGS__)
void log_debug_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define log_info(...)  log_msg("info", __VA_ARGS__)
#define log_warn(...)  log_msg("warn", __VA_ARGS__)
#define log_error(...) log_msg("error", __VA_ARGS__)

#endif
