// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Config file parsing: every key, defaults, and malformed files with their line. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "tracer.h"

static int load(const char *text, struct config *cfg, char **err)
{
	return config_load_string("test.yaml", text, strlen(text), cfg, err);
}

static void test_defaults(void **state)
{
	struct config cfg;
	char *err = NULL;

	(void)state;
	assert_int_equal(config_load(NULL, &cfg, &err), 0);
	assert_null(err);
	assert_null(cfg.path);
	assert_int_equal(cfg.mode, TRACER_MODE_AUTO);
	assert_string_equal(cfg.mode_name, "auto");
	assert_string_equal(cfg.control_socket, "/run/voltrace/control.sock");
	assert_string_equal(cfg.metrics_address, "127.0.0.1:9464");
	assert_string_equal(cfg.state_file, "/run/voltrace/state.json");
	assert_string_equal(cfg.bpffs_dir, "/sys/fs/bpf/voltrace");
	assert_int_equal(cfg.n_allowed_sources, 1);
	assert_string_equal(cfg.allowed_sources[0], "/var/lib/kubelet/pods");
	assert_int_equal(cfg.ring_buffer_size, 256 * 1024);
	assert_int_equal(cfg.debounce_ms, 5);
	assert_int_equal(cfg.resync_interval_s, 300);
	assert_int_equal(cfg.log_level, LOG_LVL_INFO);
	assert_false(cfg.log_level_set);
	assert_int_equal(cfg.n_watches, 0);
	config_free(&cfg);
}

static void test_empty_file_is_defaults(void **state)
{
	struct config cfg;
	char *err = NULL;

	(void)state;
	assert_int_equal(load("# nothing set\n", &cfg, &err), 0);
	assert_string_equal(cfg.path, "test.yaml");
	assert_string_equal(cfg.control_socket, CONFIG_DEFAULT_CONTROL_SOCKET);
	config_free(&cfg);
	assert_int_equal(load("", &cfg, &err), 0);
	config_free(&cfg);
}

static const char full[] =
	"# every key\n"
	"mode: tracepoint\n"
	"control_socket: /tmp/vt//ctl.sock\n"
	"metrics_address: \"[::1]:0\"\n"
	"state_file: /tmp/vt/state.json\n"
	"bpffs_dir: /sys/fs/bpf/vt-test/\n"
	"allowed_sources:\n"
	"  - /var/lib/kubelet/pods\n"
	"  - /tmp/vols/./x\n"
	"ring_buffer_size: 1MiB\n"
	"debounce_ms: 20\n"
	"resync_interval_s: 0\n"
	"log_level: debug\n"
	"watches:\n"
	"  - source: /var/lib/kubelet/pods/u1/volumes/kubernetes.io~configmap/cm\n"
	"    agent: vsock://3:1024\n"
	"    dest: /run/kata-containers/shared/containers/c1/cm\n"
	"  - {source: /tmp/vols/x/s, agent: 'hvsock:///run/vc/kata.hvsock:1024',\n"
	"     dest: /run/kata-containers/shared/containers/c1/s}\n"
	"  - source: /tmp/vols/x/t\n"
	"    agent: unix:///tmp/agent.sock\n"
	"    dest: /run/kata-containers/shared/containers/c2/t/\n";

static void test_every_key(void **state)
{
	struct config cfg;
	char *err = NULL;

	(void)state;
	assert_int_equal(load(full, &cfg, &err), 0);
	assert_null(err);
	assert_int_equal(cfg.mode, TRACER_MODE_TRACEPOINT);
	assert_string_equal(cfg.mode_name, "tracepoint");
	assert_string_equal(cfg.control_socket, "/tmp/vt/ctl.sock");
	assert_string_equal(cfg.metrics_address, "[::1]:0");
	assert_string_equal(cfg.state_file, "/tmp/vt/state.json");
	assert_string_equal(cfg.bpffs_dir, "/sys/fs/bpf/vt-test");
	assert_int_equal(cfg.n_allowed_sources, 2);
	assert_string_equal(cfg.allowed_sources[0], "/var/lib/kubelet/pods");
	assert_string_equal(cfg.allowed_sources[1], "/tmp/vols/x");
	assert_int_equal(cfg.ring_buffer_size, 1 << 20);
	assert_int_equal(cfg.debounce_ms, 20);
	assert_int_equal(cfg.resync_interval_s, 0);
	assert_true(cfg.log_level_set);
	assert_int_equal(cfg.log_level, LOG_LVL_DEBUG);
	assert_int_equal(cfg.n_watches, 3);
	assert_string_equal(cfg.watches[0].source,
			    "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~configmap/cm");
	assert_string_equal(cfg.watches[0].agent, "vsock://3:1024");
	assert_string_equal(cfg.watches[0].dest, "/run/kata-containers/shared/containers/c1/cm");
	assert_int_equal(cfg.watches[0].line, 15);
	assert_string_equal(cfg.watches[1].agent, "hvsock:///run/vc/kata.hvsock:1024");
	assert_int_equal(cfg.watches[1].line, 18);
	assert_string_equal(cfg.watches[2].dest, "/run/kata-containers/shared/containers/c2/t");
	config_free(&cfg);
}

static void test_modes_and_levels(void **state)
{
	static const struct {
		const char *text;
		int mode;
	} modes[] = {
		{ "mode: auto", TRACER_MODE_AUTO },
		{ "mode: fentry", TRACER_MODE_FENTRY },
		{ "mode: kprobe", TRACER_MODE_KPROBE },
		{ "mode: tracepoint", TRACER_MODE_TRACEPOINT },
	};
	static const struct {
		const char *text;
		enum log_level level;
	} levels[] = {
		{ "log_level: error", LOG_LVL_ERROR },
		{ "log_level: warn", LOG_LVL_WARN },
		{ "log_level: info", LOG_LVL_INFO },
		{ "log_level: debug", LOG_LVL_DEBUG },
	};
	struct config cfg;
	char *err = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_int_equal(load(modes[i].text, &cfg, &err), 0);
		assert_int_equal(cfg.mode, modes[i].mode);
		config_free(&cfg);
	}
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		assert_int_equal(load(levels[i].text, &cfg, &err), 0);
		assert_int_equal(cfg.log_level, levels[i].level);
		config_free(&cfg);
	}
}

static void test_sizes(void **state)
{
	static const struct {
		const char *text;
		uint64_t bytes;
	} ok[] = {
		{ "ring_buffer_size: 4096", 4096 },
		{ "ring_buffer_size: 4KiB", 4096 },
		{ "ring_buffer_size: 256kib", 256 * 1024 },
		{ "ring_buffer_size: 2m", 2 << 20 },
		{ "ring_buffer_size: 1GiB", 1 << 30 },
	};
	struct config cfg;
	char *err = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(load(ok[i].text, &cfg, &err), 0);
		assert_int_equal(cfg.ring_buffer_size, ok[i].bytes);
		config_free(&cfg);
	}
}

static void test_metrics_off(void **state)
{
	struct config cfg;
	char *err = NULL;

	(void)state;
	assert_int_equal(load("metrics_address: off\n", &cfg, &err), 0);
	assert_string_equal(cfg.metrics_address, "off");
	config_free(&cfg);
	assert_int_equal(load("metrics_address: \"\"\n", &cfg, &err), 0);
	assert_string_equal(cfg.metrics_address, "");
	config_free(&cfg);
	assert_int_equal(load("watches: []\n", &cfg, &err), 0);
	assert_int_equal(cfg.n_watches, 0);
	config_free(&cfg);
}

/* Malformed configs and the exact message each must produce. */
static const struct {
	const char *text;
	const char *msg;
} bad[] = {
	{ "mode: tracepoint\nmod: auto\n",
	  "test.yaml:2: unknown setting \"mod\"" },
	{ "mode: auto\n\nmode: fentry\n",
	  "test.yaml:3: duplicate setting \"mode\"" },
	{ "mode: warp\n",
	  "test.yaml:1: mode: unknown mode \"warp\" (want auto, fentry, kprobe or tracepoint)" },
	{ "log_level: loud\n",
	  "test.yaml:1: log_level: unknown level \"loud\" (want error, warn, info or debug)" },
	{ "debounce_ms: -3\n",
	  "test.yaml:1: debounce_ms: \"-3\" is not a non-negative integer" },
	{ "debounce_ms: 99999\n",
	  "test.yaml:1: debounce_ms: 99999 is out of range (at most 10000)" },
	{ "resync_interval_s: 86401\n",
	  "test.yaml:1: resync_interval_s: 86401 is out of range (at most 86400)" },
	{ "resync_interval_s: 1.5\n",
	  "test.yaml:1: resync_interval_s: \"1.5\" is not a non-negative integer" },
	{ "debounce_ms: [1]\n",
	  "test.yaml:1: debounce_ms: expected an integer, got a list" },
	{ "ring_buffer_size: 5000\n",
	  "test.yaml:1: ring_buffer_size: 5000 is not a power of two (the kernel requires one)" },
	{ "ring_buffer_size: 1024\n",
	  "test.yaml:1: ring_buffer_size: 1024 is out of range (4KiB to 1GiB)" },
	{ "ring_buffer_size: lots\n",
	  "test.yaml:1: ring_buffer_size: \"lots\" is not a size (bytes, or with a KiB/MiB/GiB suffix)" },
	{ "control_socket: run/ctl.sock\n",
	  "test.yaml:1: control_socket: \"run/ctl.sock\" is not an absolute path" },
	{ "state_file: /run/../etc/x\n",
	  "test.yaml:1: state_file: \"/run/../etc/x\": \"..\" is not allowed" },
	{ "bpffs_dir:\n  a: b\n",
	  "test.yaml:2: bpffs_dir: expected a string, got a mapping" },
	{ "state_file:\n",
	  "test.yaml:1: state_file: must not be empty" },
	{ "metrics_address: 9464\n",
	  "test.yaml:1: metrics_address: \"9464\" is not HOST:PORT or [IPV6]:PORT" },
	{ "metrics_address: ::1:9464\n",
	  "test.yaml:1: metrics_address: \"::1:9464\" is not HOST:PORT or [IPV6]:PORT" },
	{ "allowed_sources: /var/lib\n",
	  "test.yaml:1: allowed_sources: expected a list of directories, got a scalar" },
	{ "allowed_sources: []\n",
	  "test.yaml:1: allowed_sources: must list at least one directory" },
	{ "allowed_sources:\n  - /ok\n  - relative\n",
	  "test.yaml:3: allowed_sources: \"relative\" is not an absolute path" },
	{ "allowed_sources: [/]\n",
	  "test.yaml:1: allowed_sources: \"/\" would allow every directory" },
	{ "mode: auto\nmode: [\n",
	  "test.yaml:3: YAML syntax error: did not find expected node content while parsing a flow node" },
	{ "a: b\n  c: d\n",
	  "test.yaml:2: YAML syntax error: mapping values are not allowed in this context" },
	{ "mode: 'unterminated\n",
	  "test.yaml:2: YAML syntax error: found unexpected end of stream while scanning a quoted scalar" },
	{ "- mode: auto\n",
	  "test.yaml:1: the top level must be a mapping of settings, got a list" },
	{ "mode: auto\n---\nmode: fentry\n",
	  "test.yaml:3: only one YAML document is allowed" },
	{ "watches:\n  source: /a\n",
	  "test.yaml:2: watches: expected a list of {source, agent, dest}, got a mapping" },
	{ "watches:\n  - /a\n",
	  "test.yaml:2: watches: each entry must be a mapping {source, agent, dest}, got a scalar" },
	{ "watches:\n  - source: /a\n    agent: vsock://3:1024\n",
	  "test.yaml:2: watches: entry lacks \"dest\"" },
	{ "watches:\n  - source: /a\n    agent: vsock://3:1024\n"
	  "    dest: /run/kata-containers/shared/containers/a\n    mode: x\n",
	  "test.yaml:5: watches: unknown key \"mode\" (want source, agent, dest)" },
	{ "watches:\n  - source: /a\n    source: /b\n",
	  "test.yaml:3: watches: duplicate key \"source\"" },
	{ "watches:\n  - source: a\n    agent: vsock://3:1024\n"
	  "    dest: /run/kata-containers/shared/containers/a\n",
	  "test.yaml:2: source \"a\": source must be an absolute path" },
	{ "watches:\n  - source: /a\n    agent: tcp://1.2.3.4:80\n"
	  "    dest: /run/kata-containers/shared/containers/a\n",
	  "test.yaml:3: agent \"tcp://1.2.3.4:80\": unknown agent URL scheme (want vsock://, hvsock:// or unix://)" },
	{ "watches:\n  - source: /a\n    agent: vsock://3\n"
	  "    dest: /run/kata-containers/shared/containers/a\n",
	  "test.yaml:3: agent \"vsock://3\": vsock:// URL must be vsock://CID:PORT" },
	{ "watches:\n  - source: /a\n    agent: vsock://3:1024\n    dest: /etc\n",
	  "test.yaml:4: dest \"/etc\": dest must be below /run/kata-containers/shared/containers/ (the agent refuses other paths)" },
	{ "watches:\n  - source: /a\n    agent: vsock://3:1024\n"
	  "    dest: /run/kata-containers/shared/containers/../../x\n",
	  "test.yaml:4: dest \"/run/kata-containers/shared/containers/../../x\": dest must not contain \"..\"" },
	{ "watches:\n  - source: /a\n    agent: vsock://3:1024\n"
	  "    dest: /run/kata-containers/shared/containers\n",
	  "test.yaml:4: dest \"/run/kata-containers/shared/containers\": dest must be below /run/kata-containers/shared/containers/ (the agent refuses other paths)" },
	{ "watches:\n"
	  "  - {source: /a, agent: 'vsock://3:1', dest: /run/kata-containers/shared/containers/a}\n"
	  "  - {source: /a/, agent: 'vsock://4:1', dest: /run/kata-containers/shared/containers/a}\n",
	  "test.yaml:3: watches: /a -> /run/kata-containers/shared/containers/a is already listed at line 2" },
	{ "? [a, b]\n: c\n",
	  "test.yaml:1: setting names must be strings, got a list" },
};

static void test_malformed(void **state)
{
	struct config cfg;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *err = NULL;
		int ret = load(bad[i].text, &cfg, &err);

		if (ret == 0 || !err || strcmp(err, bad[i].msg)) {
			print_error("case %zu: got %d \"%s\"\n  want \"%s\"\n", i, ret,
				    err ? err : "(null)", bad[i].msg);
			fail();
		}
		free(err);
		/* Nothing to free after a failure; config_free stays harmless. */
		config_free(&cfg);
	}
}

static void test_file_errors(void **state)
{
	char path[] = "/tmp/vt-config-XXXXXX";
	struct config cfg;
	char *err = NULL, *want;
	int fd;

	(void)state;
	assert_int_equal(config_load("/nonexistent/voltrace.yaml", &cfg, &err), -1);
	assert_string_equal(err, "/nonexistent/voltrace.yaml: No such file or directory");
	free(err);
	assert_int_equal(config_load("/tmp", &cfg, &err), -1);
	assert_string_equal(err, "/tmp: not a regular file");
	free(err);

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "mode: fentry\nwatches: 3\n", 24), 24);
	close(fd);
	assert_int_equal(config_load(path, &cfg, &err), -1);
	assert_true(asprintf(&want, "%s:2: watches: expected a list of {source, agent, dest}, got a scalar", path) > 0);
	assert_string_equal(err, want);
	free(want);
	free(err);

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "mode: fentry\n", 13), 13);
	close(fd);
	assert_int_equal(config_load(path, &cfg, &err), 0);
	assert_string_equal(cfg.path, path);
	assert_int_equal(cfg.mode, TRACER_MODE_FENTRY);
	config_free(&cfg);
	unlink(path);
}

static void test_checks(void **state)
{
	char *host;
	uint16_t port;
	uint64_t sz;

	(void)state;
	assert_null(config_check_agent_url("unix:///run/agent.sock"));
	assert_null(config_check_agent_url("vsock://4294967295:1024"));
	assert_null(config_check_agent_url("hvsock:///run/vc/fc/kata.hvsock:1024"));
	assert_non_null(config_check_agent_url("unix://relative.sock"));
	assert_non_null(config_check_agent_url("vsock://x:1"));
	assert_non_null(config_check_agent_url("vsock://3:1024x"));
	assert_non_null(config_check_agent_url("hvsock:///run/kata.hvsock"));
	assert_non_null(config_check_agent_url(""));
	assert_null(config_check_dest("/run/kata-containers/shared/containers/a/b"));
	assert_non_null(config_check_dest("run/kata-containers/shared/containers/a"));
	assert_non_null(config_check_dest("/run/kata-containers/shared/containersX/a"));

	assert_int_equal(config_parse_address("127.0.0.1:9464", &host, &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 9464);
	free(host);
	assert_int_equal(config_parse_address("[::1]:0", &host, &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 0);
	free(host);
	assert_int_equal(config_parse_address(":80", &host, &port), 0);
	assert_string_equal(host, "");
	free(host);
	assert_int_equal(config_parse_address("localhost:65536", &host, &port), -EINVAL);
	assert_int_equal(config_parse_address("[::1]9464", &host, &port), -EINVAL);
	assert_int_equal(config_parse_address("host:", &host, &port), -EINVAL);
	assert_int_equal(config_parse_address("host:+1", &host, &port), -EINVAL);

	assert_int_equal(config_parse_size("64 KiB", &sz), 0);
	assert_int_equal(sz, 64 * 1024);
	assert_int_equal(config_parse_size("1TiB", &sz), -EINVAL);
	assert_int_equal(config_parse_size("-1", &sz), -EINVAL);
	assert_int_equal(config_parse_size("99999999999999999999999", &sz), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_empty_file_is_defaults),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_modes_and_levels),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_metrics_off),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_checks),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
