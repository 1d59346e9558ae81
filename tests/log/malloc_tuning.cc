// The simulated disk copies whole files (a journal file is a quarter of a megabyte) at every
// restart, thousands of times per test. glibc serves such blocks with mmap and gives them
// back at free, so each copy page-faults afresh, and on this kind of VM a page fault costs
// enough to make a 0.15 s test take 10 s. Serving them from the heap keeps the pages.
#include <malloc.h>

namespace {

const bool kTuned = [] {
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  return true;
}();

}  // namespace
