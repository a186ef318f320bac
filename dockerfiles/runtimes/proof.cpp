// The runtimes' proof: a static C++17 program that throws and catches (through frames with
// destructors, across threads through std::exception_ptr), uses std::string, std::vector,
// std::thread, a thread_local with a destructor (__cxa_thread_atexit) and iostream.
#include <exception>
#include <iostream>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

std::mutex mu;
int destroyed = 0;

void count_destruction() {
    std::lock_guard<std::mutex> lock(mu);
    ++destroyed;
}

struct Guard {
    ~Guard() { count_destruction(); }
};

struct PerThread {
    std::string name = "worker";
    ~PerThread() { count_destruction(); }
};
thread_local PerThread per_thread;

[[noreturn]] void fail(int depth) {
    Guard guard;
    if (depth == 0) throw std::runtime_error("thrown at depth 0");
    fail(depth - 1);
}

}  // namespace

int main() {
    std::vector<std::string> parts{"libc++", "libc++abi", "libunwind"};
    std::string joined = std::accumulate(
        std::next(parts.begin()), parts.end(), parts.front(),
        [](std::string all, const std::string& part) { return all + " " + part; });

    int caught = 0;
    try {
        fail(3);
    } catch (const std::runtime_error& e) {
        if (std::string(e.what()) == "thrown at depth 0") ++caught;
    }

    std::vector<std::exception_ptr> errors(4);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([i, &errors] {
            per_thread.name += std::to_string(i);
            try {
                if (i % 2 == 1) throw std::out_of_range("thread " + std::to_string(i));
            } catch (...) {
                errors[i] = std::current_exception();
            }
        });
    }
    for (auto& thread : threads) thread.join();
    int rethrown = 0;
    for (auto& error : errors) {
        if (!error) continue;
        try {
            std::rethrow_exception(error);
        } catch (const std::out_of_range&) {
            ++rethrown;
        }
    }

    std::cout << "runtimes ok: " << joined << "; caught " << caught << ", rethrown " << rethrown
              << ", destructors " << destroyed << std::endl;
    return caught == 1 && rethrown == 2 && destroyed == 8 ? 0 : 1;
}
