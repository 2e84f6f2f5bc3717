// Placeholder until the server lands: prints its version.
#include <cstdio>

int main() {
  std::puts("strata 0.1.0");
  return 0;
}
