/* The ISA level the C compiler was given, as the predefined macros of -march show it. */
const char *probe_level(void) {
#if defined(__AVX512F__)
    return "avx512f";
#elif defined(__AVX2__)
    return "avx2";
#elif defined(__SSE4_2__)
    return "sse4.2";
#elif defined(__ARM_FEATURE_SVE2)
    return "sve2";
#elif defined(__ARM_FEATURE_ATOMICS)
    return "lse";
#else
    return "baseline";
#endif
}
