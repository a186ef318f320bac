// C++ that needs the whole runtime: a std::string, a thrown and caught exception.
#include <stdexcept>
#include <string>

extern "C" int probe_cpp(int value) {
    try {
        throw std::runtime_error(std::to_string(value * 2));
    } catch (const std::exception &error) {
        return std::stoi(error.what());
    }
}
