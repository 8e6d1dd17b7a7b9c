#include "tests.h"
int test_bench(void) { return failf("not yet"); }
