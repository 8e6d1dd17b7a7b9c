/*
 * paths.h -- path helpers for parent locators.
 */
#ifndef LIBVHD_PATHS_H
#define LIBVHD_PATHS_H

#include <stdbool.h>
#include <stddef.h>

/* @rel resolved against the folder of @base_file (an absolute @rel is kept);
 * a leading "./" is dropped. */
void path_join_relative(const char *base_file, const char *rel, char *out,
			size_t size);
/* Last component of a path with '/' or '\\' separators (borrowed). */
const char *path_basename_any(const char *name);
/* Whether @path (which must exist) lies inside folder @root. */
bool path_is_under(const char *path, const char *root);
/* Path of @target relative to the folder of @from_file; absolute paths are
 * resolved with realpath when the files exist.  Returns 0 or -ENAMETOOLONG. */
int path_relative(const char *from_file, const char *target, char *out,
		  size_t size);
/* Absolute form of @path (realpath if it exists, else cwd-joined). */
int path_absolute(const char *path, char *out, size_t size);

/* The two forms a child stores for its parent: @abs, the absolute path,
 * and @wrel, the path relative to the child's folder in Windows form
 * (".\\dir\\name", or "..\\name").  Both buffers hold @size bytes.
 * Returns 0 or -ENAMETOOLONG. */
int path_locator_forms(const char *child, const char *parent, char *abs,
		       char *wrel, size_t size);

#endif /* LIBVHD_PATHS_H */
