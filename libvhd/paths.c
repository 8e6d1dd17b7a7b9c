/*
 * paths.c -- path helpers for parent locators.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "paths.h"

void path_join_relative(const char *base_file, const char *rel, char *out,
			size_t size)
{
	const char *slash = strrchr(base_file, '/');

	while (rel[0] == '.' && rel[1] == '/')
		rel += 2;
	if (rel[0] == '/' || !slash)
		snprintf(out, size, "%s", rel);
	else
		snprintf(out, size, "%.*s/%s", (int)(slash - base_file), base_file,
			 rel);
}

const char *path_basename_any(const char *name)
{
	const char *b = name;

	for (const char *p = name; *p; p++)
		if (*p == '/' || *p == '\\')
			b = p + 1;
	return b;
}

bool path_is_under(const char *path, const char *root)
{
	char rp[PATH_MAX], rr[PATH_MAX];
	size_t n;

	if (!realpath(path, rp) || !realpath(root, rr))
		return false;
	n = strlen(rr);
	if (n == 1)
		return true;	/* "/" */
	return !strncmp(rp, rr, n) && (rp[n] == '/' || rp[n] == '\0');
}

int path_absolute(const char *path, char *out, size_t size)
{
	char cwd[PATH_MAX];
	int n;

	if (realpath(path, cwd)) {
		n = snprintf(out, size, "%s", cwd);
	} else if (path[0] == '/') {
		n = snprintf(out, size, "%s", path);
	} else {
		if (!getcwd(cwd, sizeof(cwd)))
			return -errno;
		n = snprintf(out, size, "%s/%s", cwd, path);
	}
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Folder part of an absolute file path, resolved. */
static int folder_of(const char *file, char *out, size_t size)
{
	char abs[PATH_MAX];
	char *slash;
	int rc = path_absolute(file, abs, sizeof(abs));

	if (rc < 0)
		return rc;
	slash = strrchr(abs, '/');
	if (slash == abs)
		slash[1] = '\0';
	else
		*slash = '\0';
	return path_absolute(abs, out, size);
}

int path_relative(const char *from_file, const char *target, char *out,
		  size_t size)
{
	char from[PATH_MAX], to[PATH_MAX];
	size_t common = 0, pos = 0;
	const char *rest;
	int rc;

	rc = folder_of(from_file, from, sizeof(from));
	if (rc == 0)
		rc = path_absolute(target, to, sizeof(to));
	if (rc < 0)
		return rc;
	/* Longest common prefix ending at a component boundary. */
	for (size_t i = 0;; i++) {
		if ((from[i] == '/' || from[i] == '\0') &&
		    (to[i] == '/' || to[i] == '\0'))
			common = i;
		if (from[i] != to[i] || from[i] == '\0')
			break;
	}
	if (!strcmp(from, "/")) {
		if (strlen(to + 1) + 1 > size)
			return -ENAMETOOLONG;
		strcpy(out, to + 1);
		return 0;
	}
	out[0] = '\0';
	for (const char *p = from + common; *p; p++) {
		if (*p != '/')
			continue;
		if (pos + 3 >= size)
			return -ENAMETOOLONG;
		memcpy(out + pos, "../", 3);
		pos += 3;
	}
	rest = to + common;
	if (*rest == '/')
		rest++;
	if (pos + strlen(rest) + 1 > size)
		return -ENAMETOOLONG;
	strcpy(out + pos, rest);
	return 0;
}

int path_locator_forms(const char *child, const char *parent, char *abs,
		       char *wrel, size_t size)
{
	char rel[PATH_MAX];
	int rc = path_absolute(parent, abs, size), n;

	if (rc == 0)
		rc = path_relative(child, parent, rel, sizeof(rel));
	if (rc < 0)
		return rc;
	n = snprintf(wrel, size, "%s%s", strncmp(rel, "../", 3) ? ".\\" : "", rel);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	for (char *c = wrel; *c; c++)
		if (*c == '/')
			*c = '\\';
	return 0;
}
