/* sl_testfiles — the sorted *.json files of a test data directory. */
#ifndef SL_TESTFILES_H
#define SL_TESTFILES_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
sl_test_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Fills *out with malloc'd names (dir/name if full_path), sorted; returns
 * how many (0 if dir cannot be read). The caller frees each and *out. */
static inline size_t
sl_test_json_files(const char *dir, int full_path, char ***out)
{
    size_t n = 0, cap = 0;
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            *out = realloc(*out, cap * sizeof **out);
        }
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        (*out)[n++] = strdup(full_path ? path : e->d_name);
    }
    closedir(d);
    qsort(*out, n, sizeof **out, sl_test_cmp_names);
    return n;
}

#endif
