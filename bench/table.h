// SPDX-License-Identifier: LGPL-2.1-or-later
// Samples, their median and spread, and the one table the benchmark prints.
#pragma once

#include <string>
#include <vector>

namespace bench {

// Repeated timings of one contender, in seconds.
class Samples {
public:
    void add(double seconds) { v_.push_back(seconds); }
    size_t size() const { return v_.size(); }
    double median() const { return quantile(0.5); }
    double min() const { return quantile(0.0); }
    double max() const { return quantile(1.0); }
    // Nearest-rank quantile; 0 when empty.
    double quantile(double q) const;

private:
    std::vector<double> v_;
};

// "812 µs", "1.23 ms", "0.45 s": three significant digits.
std::string format_time(double seconds);

class Table {
public:
    void section(const std::string& title);
    // One measured contender: median, min..max, and free-form columns.
    void row(const std::string& what, const Samples& s, const std::string& per_item,
             const std::string& ratio, const std::string& verdict);
    // A row with text only (no timings).
    void note(const std::string& what, const std::string& value, const std::string& verdict = "");
    void print() const;

private:
    std::vector<std::vector<std::string>> rows_;
};

} // namespace bench
