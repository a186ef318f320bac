// Built by setup-sysroots.sh through a CMake toolchain file.
#include <iostream>

int main() {
    std::cout << "cmake ok" << std::endl;
    return 0;
}
