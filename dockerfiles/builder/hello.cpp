// Smoke test of a sysroot's C++ runtime: libc++, libc++abi and libunwind, statically linked.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

int main() {
    std::vector<int> values;
    std::thread worker([&values] { values.push_back(42); });
    worker.join();
    try {
        throw std::runtime_error(std::to_string(values.at(0)));
    } catch (const std::exception &error) {
        std::printf("c++ ok: caught %s\n", error.what());
    }
    return 0;
}
