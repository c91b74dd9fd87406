/* replay — main() of a fuzz target in the normal build: runs every file
 * named on the command line, or every file of a directory named there (in
 * name order), through LLVMFuzzerTestOneInput once, each from a buffer of
 * exactly its size so that a sanitizer sees any read past the end. A crash
 * or a sanitizer report fails the test; so does an empty corpus, which
 * would otherwise pass without testing anything. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

static int
s_run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf)
        abort();
    /* An exact-size copy: no slack after the input's last byte. */
    unsigned char *exact = malloc(n ? n : 1);
    if (!exact)
        abort();
    memcpy(exact, buf, n);
    free(buf);
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

int
main(int argc, char **argv)
{
    size_t runs = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            fprintf(stderr, "replay: %s does not exist\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (s_run_file(argv[i]) < 0)
                return 1;
            runs++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, NULL, alphasort);
        if (n < 0) {
            fprintf(stderr, "replay: cannot read %s\n", argv[i]);
            return 1;
        }
        int rc = 0;
        for (int j = 0; j < n; j++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], names[j]->d_name);
            if (names[j]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                if (rc == 0 && s_run_file(path) < 0)
                    rc = 1;
                runs++;
            }
            free(names[j]);
        }
        free(names);
        if (rc)
            return 1;
    }
    if (runs == 0) {
        fprintf(stderr, "replay: no input (usage: %s FILE|DIR...)\n", argv[0]);
        return 1;
    }
    printf("replay: %zu inputs ran without a crash\n", runs);
    return 0;
}
