// SPDX-License-Identifier: LGPL-2.1-or-later
// sessreap-host: command-line entry, option parsing and dispatch.
#include <stdio.h>
#include <string.h>

#include <set>
#include <string>
#include <vector>

#include "config_cmd.h"
#include "module.h"
#include "run.h"

namespace {

constexpr const char* kUsage =
    "Usage:\n"
    "  sessreap-host run [OPTIONS] -- COMMAND [ARGS...]\n"
    "  sessreap-host reap-stale [--module PATH] [CONFIG OPTIONS] [--verbose]\n"
    "  sessreap-host config [--module PATH] [CONFIG OPTIONS] [--json]\n"
    "  sessreap-host config --check [--module PATH] [CONFIG OPTIONS] [FILE...]\n"
    "  sessreap-host --help | --version\n"
    "\n"
    "Runs COMMAND as the leader of a new session, records it with the sessreap\n"
    "module, and when it exits (or a forwarded SIGINT, SIGTERM or SIGHUP's grace\n"
    "runs out) tears down everything its session started. Exits with COMMAND's\n"
    "status, or 128+N when it died of signal N.\n"
    "\n"
    "Options for run:\n"
    "  --module PATH       load this module instead of the default\n"
    "  --grace MS          grace period between the termination and the kill signal\n"
    "  --name NAME         label for the launch record (names a systemd scope)\n"
    "  --verbose           log every signal sent\n"
    "\n"
    "Configuration options (run, reap-stale, config):\n"
    "  --config-dir DIR    a drop-in directory applied after the system ones;\n"
    "                      repeat it for more, later ones apply later\n"
    "  --config-json JSON  extra configuration, as in a drop-in file, applied last\n"
    "  --root DIR          read the system drop-in directories under DIR\n"
    "  --no-system-config  skip the system drop-in directories\n"
    "\n"
    "reap-stale tears down what hosts that died left running: every launch record\n"
    "under the state directory whose host is gone (see sessreap(8)).\n"
    "\n"
    "config prints the effective configuration as JSON, then the file each value\n"
    "came from (--json: one JSON document with both). It exits 1 when the\n"
    "configuration is invalid or cannot be read. config --check validates each\n"
    "FILE, or with no FILE every drop-in that applies and --config-json; it\n"
    "prints every error as FILE:LINE:COL: key.path: ... and exits 1 when there\n"
    "is any, 0 when there is none.\n";

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
        printf("module %s %s (ABI %u.%u)\n", m.path.c_str(), m.version(), m.abi_version() >> 16,
               m.abi_version() & 0xffff);
    else
        printf("module %s: %s\n", module_path.c_str(), err.c_str());
    return 0;
}

// What a command line holds once parsed.
struct CommandLine {
    shim::RunOptions opts;
    std::string module = shim::default_module_path();
    bool check = false;                // config --check
    bool json = false;                 // config --json
    std::vector<std::string> operands; // the command to run, or the files to check
};

const std::set<std::string> kConfigOptions = {"--module", "--config-dir", "--config-json", "--root",
                                              "--no-system-config"};
const std::set<std::string> kValueOptions = {"--module", "--name",       "--grace",
                                             "--root",   "--config-dir", "--config-json"};

// Sets one option that takes a value.
int set_value(const std::string& option, const std::string& v, CommandLine* cl) {
    if (option == "--module") cl->module = v;
    if (option == "--name") cl->opts.name = v;
    if (option == "--config-json") cl->opts.config_json = v;
    if (option == "--config-dir") cl->opts.config_dirs.push_back(v);
    if (option == "--root") cl->opts.config_root = v;
    if (option == "--grace" && !parse_int(v.c_str(), &cl->opts.grace_ms))
        return usage_error("--grace: expected milliseconds (0 to 86400000), got '" + v + "'");
    return 0;
}

// Parses the options in allowed; other arguments are operands. After "--", and without
// interleave after the first operand, everything is an operand, so that run's COMMAND keeps
// its own options; config --check interleaves (FILE --root DIR).
int parse_options(const std::vector<std::string>& args, const std::set<std::string>& allowed,
                  bool interleave, CommandLine* cl) {
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--") {
            cl->operands.insert(cl->operands.end(), args.begin() + long(i) + 1, args.end());
            return 0;
        }
        if (a.empty() || a[0] != '-') {
            if (!interleave) {
                cl->operands.assign(args.begin() + long(i), args.end());
                return 0;
            }
            cl->operands.push_back(a);
            continue;
        }
        std::string option = a == "-v" ? "--verbose" : a;
        if (!allowed.count(option)) return usage_error("unknown option '" + a + "'");

        if (option == "--verbose") cl->opts.verbose = true;
        if (option == "--no-system-config") cl->opts.no_system_config = true;
        if (option == "--check") cl->check = true;
        if (option == "--json") cl->json = true;
        if (!kValueOptions.count(option)) continue;

        if (i + 1 >= args.size()) return usage_error("option " + a + " needs a value");
        if (int r = set_value(option, args[++i], cl)) return r;
    }
    return 0;
}

// base and more: the options one command takes.
std::set<std::string> with(std::set<std::string> base, std::initializer_list<const char*> more) {
    base.insert(more.begin(), more.end());
    return base;
}

int with_module(const std::string& path, shim::Module* m) {
    std::string err;
    if (shim::load_module(path, m, &err)) return 0;
    fprintf(stderr, "sessreap-host: %s\n", err.c_str());
    return shim::kExitShimError;
}

int cmd_run(const std::vector<std::string>& args) {
    CommandLine cl;
    auto allowed = with(kConfigOptions, {"--grace", "--name", "--verbose"});
    if (int r = parse_options(args, allowed, false, &cl)) return r;
    cl.opts.argv = cl.operands;
    if (cl.opts.argv.empty()) return usage_error("run: no command given");

    shim::Module m;
    if (int r = with_module(cl.module, &m)) return r;
    return shim::run_command(m, cl.opts);
}

int cmd_reap_stale(const std::vector<std::string>& args) {
    CommandLine cl;
    if (int r = parse_options(args, with(kConfigOptions, {"--verbose"}), false, &cl)) return r;
    if (!cl.operands.empty()) return usage_error("reap-stale: unexpected '" + cl.operands[0] + "'");

    shim::Module m;
    if (int r = with_module(cl.module, &m)) return r;
    return shim::reap_stale(m, cl.opts);
}

int cmd_config(const std::vector<std::string>& args) {
    CommandLine cl;
    if (int r = parse_options(args, with(kConfigOptions, {"--check", "--json"}), true, &cl))
        return r;
    if (!cl.check && !cl.operands.empty())
        return usage_error("config: unexpected '" + cl.operands[0] + "' (files go with --check)");
    if (cl.check && cl.json) return usage_error("config: --json does not go with --check");

    shim::Module m;
    if (int r = with_module(cl.module, &m)) return r;
    if (cl.check) return shim::check_config(m, cl.opts, cl.operands);
    return shim::show_config(m, cl.opts, cl.json);
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
    if (cmd == "config") return cmd_config({args.begin() + 1, args.end()});
    return usage_error("unknown command '" + cmd + "'");
}
