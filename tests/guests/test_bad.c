#include "tests.h"
int test_bad(void) { return failf("not yet"); }
