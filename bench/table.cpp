// SPDX-License-Identifier: LGPL-2.1-or-later
// Samples, their median and spread, and the one table the benchmark prints.
#include "table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace bench {
namespace {

// Display width of UTF-8 text: count the bytes that start a character.
size_t width(const std::string& s) {
    return size_t(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

} // namespace

double Samples::quantile(double q) const {
    if (v_.empty()) return 0;
    std::vector<double> sorted = v_;
    std::sort(sorted.begin(), sorted.end());
    size_t i = size_t(std::lround(q * double(sorted.size() - 1)));
    return sorted[i];
}

std::string format_time(double seconds) {
    char buf[32];
    if (seconds < 1e-3)
        snprintf(buf, sizeof buf, "%.3g µs", seconds * 1e6);
    else if (seconds < 1)
        snprintf(buf, sizeof buf, "%.3g ms", seconds * 1e3);
    else
        snprintf(buf, sizeof buf, "%.3g s", seconds);
    return buf;
}

void Table::section(const std::string& title) {
    rows_.push_back({title});
}

void Table::row(const std::string& what, const Samples& s, const std::string& per_item,
                const std::string& ratio, const std::string& verdict) {
    std::string spread = format_time(s.min()) + " .. " + format_time(s.max());
    rows_.push_back({"  " + what, format_time(s.median()), spread, per_item, ratio, verdict});
}

void Table::note(const std::string& what, const std::string& value, const std::string& verdict) {
    rows_.push_back({"  " + what, value, "", "", "", verdict});
}

void Table::print() const {
    std::vector<std::string> head = {"figure / contender", "median", "min .. max",
                                     "per process",        "ratio",  "goal"};
    std::vector<size_t> w(head.size());
    for (size_t c = 0; c < head.size(); ++c) w[c] = width(head[c]);
    for (const auto& r : rows_)
        if (r.size() > 1)
            for (size_t c = 0; c < r.size(); ++c) w[c] = std::max(w[c], width(r[c]));

    auto line = [&](const std::vector<std::string>& r) {
        std::string out;
        for (size_t c = 0; c < r.size(); ++c) {
            out += r[c];
            if (c + 1 < r.size()) out += std::string(w[c] - width(r[c]) + 2, ' ');
        }
        while (!out.empty() && out.back() == ' ') out.pop_back();
        printf("%s\n", out.c_str());
    };
    line(head);
    for (const auto& r : rows_) {
        if (r.size() == 1)
            printf("%s\n", r[0].c_str());
        else
            line(r);
    }
    fflush(stdout);
}

} // namespace bench
