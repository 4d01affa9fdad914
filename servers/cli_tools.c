/*
 * cli_tools.c - `hikyaku check`, `compile`, `disasm` and `fmt`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytecode.h"
#include "cli.h"
#include "parse.h"

/* Parses "FILE... [common options]"; files collected into files[]. */
static int
parse_args(int argc, char **argv, struct hk_compile_opts *o, bool *layer_set, const char ***files, int *nfiles,
    const char *const *flags, bool *flag_vals, const char **out_path)
{
	*files = calloc((size_t)argc + 1, sizeof(char *));
	*nfiles = 0;
	for (int i = 1; i < argc; i++) {
		int err = 0;
		if (cli_common_option(argc, argv, &i, o, layer_set, &err)) {
			if (err)
				return -1;
			continue;
		}
		bool matched = false;
		for (int k = 0; flags && flags[k]; k++)
			if (strcmp(argv[i], flags[k]) == 0) {
				flag_vals[k] = true;
				matched = true;
			}
		if (matched)
			continue;
		if (out_path && strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			*out_path = argv[++i];
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0') {
			cli_usage_error("unknown option '%s'", argv[i]);
			return -1;
		}
		(*files)[(*nfiles)++] = argv[i];
	}
	return 0;
}

int
cmd_check(int argc, char **argv)
{
	struct hk_compile_opts o = { 0 };
	bool layer_set = false;
	const char **files;
	int nfiles;
	if (parse_args(argc, argv, &o, &layer_set, &files, &nfiles, NULL, NULL, NULL) < 0 || nfiles == 0) {
		if (nfiles == 0)
			cli_usage_error("check needs at least one FILE");
		free(files);
		return 2;
	}
	unsigned errors = 0, warnings = 0;
	for (int i = 0; i < nfiles; i++) {
		struct diag d;
		diag_init(&d);
		struct hk_compile_opts fo = o;
		if (!layer_set)
			fo.layer = cli_layer_for_path(files[i]);
		struct hk_unit *u = hk_unit_load(files[i], &fo, &d);
		if (u && d.errors == 0) {
			struct hk_program *p = hk_unit_codegen(u);
			hk_program_unref(&p);
		}
		diag_print(&d, stderr, cli_color());
		errors += d.errors;
		warnings += d.warnings;
		hk_unit_free(&u);
		diag_fini(&d);
	}
	if (errors || warnings)
		fprintf(stderr, "%u error%s, %u warning%s\n", errors, errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
	free(files);
	return errors ? 1 : 0;
}

static struct hk_program *
load_program(const char *path, struct hk_compile_opts *o, bool layer_set)
{
	size_t n = strlen(path);
	if (n > 4 && strcmp(path + n - 4, ".hkc") == 0) {
		char *data;
		size_t len;
		if (read_file(path, HK_MAX_CODE * 4, &data, &len) < 0) {
			fprintf(stderr, "hikyaku: cannot read %s: %s\n", path, strerror(errno));
			return NULL;
		}
		struct hk_buf err;
		buf_init(&err);
		struct hk_program *p;
		if (hk_program_read(data, len, &p, &err) < 0) {
			fprintf(stderr, "hikyaku: %s: refused: %s\n", path, err.data);
			p = NULL;
		}
		buf_fini(&err);
		free(data);
		return p;
	}
	struct diag d;
	diag_init(&d);
	if (!layer_set)
		o->layer = cli_layer_for_path(path);
	struct hk_program *p = hk_compile_file(path, o, &d);
	diag_print(&d, stderr, cli_color());
	diag_fini(&d);
	return p;
}

int
cmd_compile(int argc, char **argv)
{
	struct hk_compile_opts o = { 0 };
	bool layer_set = false;
	const char **files;
	int nfiles;
	const char *out = NULL;
	if (parse_args(argc, argv, &o, &layer_set, &files, &nfiles, NULL, NULL, &out) < 0 || nfiles != 1) {
		if (nfiles != 1)
			cli_usage_error("compile needs exactly one FILE");
		free(files);
		return 2;
	}
	struct hk_program *p = load_program(files[0], &o, layer_set);
	if (p == NULL) {
		free(files);
		return 1;
	}
	char *def = NULL;
	if (out == NULL) {
		size_t n = strlen(files[0]);
		def = n > 3 && strcmp(files[0] + n - 3, ".hk") == 0 ? xasprintf("%.*s.hkc", (int)(n - 3), files[0]) : xasprintf("%s.hkc", files[0]);
		out = def;
	}
	struct hk_buf b;
	buf_init(&b);
	hk_program_write(p, &b);
	int rc = 0;
	char *tmp = xasprintf("%s.tmp", out);
	FILE *fp = fopen(tmp, "wb");
	if (fp == NULL || fwrite(b.data, 1, b.len, fp) != b.len || fclose(fp) != 0 || rename(tmp, out) != 0) {
		fprintf(stderr, "hikyaku: cannot write %s: %s\n", out, strerror(errno));
		rc = 1;
	}
	free(tmp);
	buf_fini(&b);
	free(def);
	hk_program_unref(&p);
	free(files);
	return rc;
}

int
cmd_disasm(int argc, char **argv)
{
	struct hk_compile_opts o = { 0 };
	bool layer_set = false;
	const char **files;
	int nfiles;
	if (parse_args(argc, argv, &o, &layer_set, &files, &nfiles, NULL, NULL, NULL) < 0 || nfiles != 1) {
		if (nfiles != 1)
			cli_usage_error("disasm needs exactly one FILE");
		free(files);
		return 2;
	}
	struct hk_program *p = load_program(files[0], &o, layer_set);
	free(files);
	if (p == NULL)
		return 1;
	struct hk_buf b;
	buf_init(&b);
	hk_disasm(p, &b);
	fwrite(b.data, 1, b.len, stdout);
	buf_fini(&b);
	hk_program_unref(&p);
	return 0;
}

int
cmd_fmt(int argc, char **argv)
{
	struct hk_compile_opts o = { 0 };
	bool layer_set = false;
	const char **files;
	int nfiles;
	static const char *const flags[] = { "-w", "--check", NULL };
	bool fv[2] = { false, false };
	if (parse_args(argc, argv, &o, &layer_set, &files, &nfiles, flags, fv, NULL) < 0 || nfiles == 0) {
		if (nfiles == 0)
			cli_usage_error("fmt needs at least one FILE");
		free(files);
		return 2;
	}
	int rc = 0;
	for (int i = 0; i < nfiles; i++) {
		struct diag d;
		diag_init(&d);
		char *text;
		size_t len;
		if (read_file(files[i], HK_MAX_SOURCE_SIZE, &text, &len) < 0) {
			fprintf(stderr, "hikyaku: cannot read %s: %s\n", files[i], strerror(errno));
			rc = 1;
			diag_fini(&d);
			continue;
		}
		struct hk_unit u;
		memset(&u, 0, sizeof(u));
		arena_init(&u.arena, 0);
		u.diag = &d;
		u.main_file = diag_add_file(&d, files[i], files[i], text, len);
		u.root = parse_file(&u.arena, &d, u.main_file, &u.comments, &u.ncomments);
		if (d.errors) {
			diag_print(&d, stderr, cli_color());
			fprintf(stderr, "hikyaku: %s not formatted: fix the syntax errors first\n", files[i]);
			rc = 1;
		} else {
			struct hk_buf out;
			buf_init(&out);
			fmt_unit(&u, &out);
			const struct src_file *sf = &d.files[u.main_file];
			bool same = out.len == sf->len && memcmp(out.data, sf->text, out.len) == 0;
			if (fv[1]) {
				if (!same) {
					printf("%s\n", files[i]);
					rc = 1;
				}
			} else if (fv[0]) {
				if (!same) {
					char *tmp = xasprintf("%s.tmp", files[i]);
					FILE *fp = fopen(tmp, "wb");
					if (fp == NULL || fwrite(out.data, 1, out.len, fp) != out.len || fclose(fp) != 0 || rename(tmp, files[i]) != 0) {
						fprintf(stderr, "hikyaku: cannot write %s: %s\n", files[i], strerror(errno));
						rc = 1;
					}
					free(tmp);
				}
			} else {
				fwrite(out.data, 1, out.len, stdout);
			}
			buf_fini(&out);
		}
		free(u.comments);
		arena_fini(&u.arena);
		diag_fini(&d);
	}
	free(files);
	return rc;
}
