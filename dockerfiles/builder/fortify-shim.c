/* Debian's libunwind.a (LLVM's unwinder) is compiled against glibc with _FORTIFY_SOURCE, so it
 * references glibc's checked printf entry points, which musl does not have. These two wrappers
 * give it musl's plain functions; the builder appends this object to each sysroot's libunwind.a. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

int __vfprintf_chk(FILE *stream, int flag, const char *format, va_list ap) {
    (void)flag;
    return vfprintf(stream, format, ap);
}

int __vsnprintf_chk(char *s, size_t maxlen, int flag, size_t slen, const char *format, va_list ap) {
    (void)flag;
    if (maxlen > slen) {
        abort();
    }
    return vsnprintf(s, maxlen, format, ap);
}
