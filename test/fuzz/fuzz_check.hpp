#pragma once
/// A failed property in a fuzz target: print what broke and abort, so libFuzzer saves the input.

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                      \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "fuzz check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);    \
      std::abort();                                                                           \
    }                                                                                         \
  } while (false)
