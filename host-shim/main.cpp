// SPDX-License-Identifier: LGPL-2.1-or-later
// sessreap-host: command-line entry, option parsing and dispatch.
#include <stdio.h>
#include <string.h>

#include <string>
#include <vector>

#include "module.h"
#include "run.h"

namespace {

constexpr const char* kUsage =
    "Usage:\n"
    "  sessreap-host run [OPTIONS] -- COMMAND [ARGS...]\n"
    "  sessreap-host reap-stale [--module PATH] [--config-json JSON] [--verbose]\n"
    "  sessreap-host --help | --version\n"
    "\n"
    "Runs COMMAND as the leader of a new session, records it with the sessreap\n"
    "module, and when it exits (or a forwarded SIGINT, SIGTERM or SIGHUP's grace\n"
    "runs out) tears down everything its session started. Exits with COMMAND's\n"
    "status, or 128+N when it died of signal N.\n"
    "\n"
    "Options for run:\n"
    "  --module PATH       load this module instead of the default\n"
    "  --grace MS          grace period between SIGTERM and SIGKILL\n"
    "  --name NAME         label for the launch record (names a systemd scope)\n"
    "  --config-json JSON  extra configuration, as in a drop-in file\n"
    "  --verbose           log every signal sent\n"
    "\n"
    "reap-stale tears down what hosts that died left running: every launch record\n"
    "under the state directory whose host is gone (see sessreap(8)).\n";

bool parse_int(const char* s, int* out) {
    char* end = nullptr;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 86'400'000) return false;
    *out = int(v);
    return true;
}

int usage_error(const std::string& message) {
    fprintf(stderr, "sessreap-host: %s\nTry 'sessreap-host --help'.\n", message.c_str());
    return 2;
}

int print_version(const std::string& module_path) {
    printf("sessreap-host %s\n", SESSREAP_HOST_VERSION);
    shim::Module m;
    std::string err;
    if (shim::load_module(module_path, &m, &err))
        printf("module %s %s (ABI %u.%u)\n", m.path.c_str(), m.version(),
               m.abi_version() >> 16, m.abi_version() & 0xffff);
    else
        printf("module %s: %s\n", module_path.c_str(), err.c_str());
    return 0;
}

// Parses the options run and reap-stale share; stops at "--" or the first
// argument that is not an option, which *rest then indexes.
int parse_options(const std::vector<std::string>& args, shim::RunOptions* opts,
                  std::string* module, size_t* rest) {
    size_t i = 0;
    for (; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--") {
            ++i;
            break;
        }
        if (a == "--verbose" || a == "-v") {
            opts->verbose = true;
            continue;
        }
        if (a != "--module" && a != "--name" && a != "--config-json" && a != "--grace") {
            if (!a.empty() && a[0] == '-') return usage_error("unknown option '" + a + "'");
            break;
        }
        if (i + 1 >= args.size()) return usage_error("option " + a + " needs a value");
        const std::string& v = args[++i];
        if (a == "--module") *module = v;
        if (a == "--name") opts->name = v;
        if (a == "--config-json") opts->config_json = v;
        if (a == "--grace" && !parse_int(v.c_str(), &opts->grace_ms))
            return usage_error("--grace: expected milliseconds (0 to 86400000), got '" + v + "'");
    }
    *rest = i;
    return 0;
}

int with_module(const std::string& path, shim::Module* m) {
    std::string err;
    if (shim::load_module(path, m, &err)) return 0;
    fprintf(stderr, "sessreap-host: %s\n", err.c_str());
    return shim::kExitShimError;
}

int cmd_run(const std::vector<std::string>& args) {
    shim::RunOptions opts;
    std::string module = shim::default_module_path();
    size_t rest = 0;
    if (int r = parse_options(args, &opts, &module, &rest)) return r;
    opts.argv.assign(args.begin() + long(rest), args.end());
    if (opts.argv.empty()) return usage_error("run: no command given");

    shim::Module m;
    if (int r = with_module(module, &m)) return r;
    return shim::run_command(m, opts);
}

int cmd_reap_stale(const std::vector<std::string>& args) {
    shim::RunOptions opts;
    std::string module = shim::default_module_path();
    size_t rest = 0;
    if (int r = parse_options(args, &opts, &module, &rest)) return r;
    if (rest != args.size()) return usage_error("reap-stale: unexpected '" + args[rest] + "'");

    shim::Module m;
    if (int r = with_module(module, &m)) return r;
    return shim::reap_stale(m, opts);
}

} // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) return usage_error("no command given");

    const std::string& cmd = args[0];
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
        fputs(kUsage, stdout);
        return 0;
    }
    if (cmd == "--version") return print_version(shim::default_module_path());
    if (cmd == "run") return cmd_run({args.begin() + 1, args.end()});
    if (cmd == "reap-stale") return cmd_reap_stale({args.begin() + 1, args.end()});
    return usage_error("unknown command '" + cmd + "'");
}
