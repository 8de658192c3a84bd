# tests/: everything runs through Automake's TAP driver from `make check`.
LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
SH_LOG_DRIVER = $(LOG_DRIVER)
TEST_EXTENSIONS = .sh
# C tests run under qemu-user in a cross build; scripts run as scripts.
LOG_COMPILER = $(TEST_WRAPPER)
SH_LOG_COMPILER = $(SHELL)
AM_TESTS_ENVIRONMENT = top_srcdir='$(top_srcdir)' top_builddir='$(top_builddir)' \
	PN_TEST_WRAPPER='$(TEST_WRAPPER)' PN_FUZZING='$(PN_FUZZING)'; \
	export top_srcdir top_builddir PN_TEST_WRAPPER PN_FUZZING;

EXTRA_DIST += tests/tap.h tests/bench-peers

check_PROGRAMS += tests/test-kernels
tests_test_kernels_SOURCES = tests/test-kernels.c tests/tap.h
tests_test_kernels_LDADD = $(PN_OPS_LDADD)
TESTS += tests/test-kernels
# A micro-benchmark of the kernel tables, built on request only:
# make tests/bench-kernels && tests/bench-kernels
EXTRA_PROGRAMS = tests/bench-kernels
tests_bench_kernels_SOURCES = tests/bench-kernels.c
tests_bench_kernels_LDADD = $(PN_OPS_LDADD)

check_PROGRAMS += tests/test-model
tests_test_model_SOURCES = tests/test-model.c tests/tap.h
tests_test_model_LDADD = $(PN_KERNEL_LDADD)
TESTS += tests/test-model

# The int8 path: fixed-point arithmetic, int8 kernels, the quantised 32 model.
check_PROGRAMS += tests/test-quant
tests_test_quant_SOURCES = tests/test-quant.c tests/tap.h
tests_test_quant_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_test_quant_LDADD = $(PN_KERNEL_LDADD)
TESTS += tests/test-quant
# Long (minutes): listed early so that make -j runs it beside the rest.
TESTS += tests/quant-models.sh
EXTRA_DIST += tests/quant-models.sh
# Float against int8 on the 10,000 test images (run by hand, not by make check).
EXTRA_DIST += tests/bench-int8

check_PROGRAMS += tests/test-dataset
tests_test_dataset_SOURCES = tests/test-dataset.c tests/tap.h
tests_test_dataset_CPPFLAGS = $(AM_CPPFLAGS) -DPN_TOP_SRCDIR='"$(abs_top_srcdir)"'
tests_test_dataset_CFLAGS = $(AM_CFLAGS) $(LIBJPEG_CFLAGS)
tests_test_dataset_LDADD = daemon/libpndaemon.a $(LIBJPEG_LIBS)
TESTS += tests/test-dataset

# Datasets through the coordinator: the data directory, hostile names and
# JPEGs, a big folder (make-jpeg writes the JPEGs).
check_PROGRAMS += tests/make-jpeg
tests_make_jpeg_SOURCES = tests/make-jpeg.c
tests_make_jpeg_CFLAGS = $(AM_CFLAGS) $(LIBJPEG_CFLAGS)
tests_make_jpeg_LDADD = $(LIBJPEG_LIBS)
TESTS += tests/cluster-data.sh
EXTRA_DIST += tests/cluster-data.sh

check_PROGRAMS += tests/test-safetensors
tests_test_safetensors_SOURCES = tests/test-safetensors.c tests/tap.h
tests_test_safetensors_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_test_safetensors_LDADD = $(PN_KERNEL_LDADD)
TESTS += tests/test-safetensors

check_PROGRAMS += tests/test-preprocess
tests_test_preprocess_SOURCES = tests/test-preprocess.c tests/tap.h
tests_test_preprocess_LDADD = $(PN_KERNEL_LDADD)
TESTS += tests/test-preprocess

check_PROGRAMS += tests/test-crc32c
tests_test_crc32c_SOURCES = tests/test-crc32c.c tests/tap.h
tests_test_crc32c_LDADD = $(PN_OPS_LDADD)
TESTS += tests/test-crc32c

TESTS += tests/format.sh
EXTRA_DIST += tests/format.sh
# scripts/install-deps against the tools the tests use; tests/need.sh
# fails a test that lacks one, naming its Debian package.
TESTS += tests/deps.sh
EXTRA_DIST += tests/deps.sh tests/need.sh

# Cross builds for the Raspberry Pis, tested under qemu-user (skipped when
# PIPENET_SKIP_CROSS=1 or not on x86_64; failed naming the package without
# the cross compiler, its C library or qemu); each keeps its build folder
# under tests/ between runs.
TESTS += tests/cross-aarch64.sh tests/cross-armhf.sh
EXTRA_DIST += tests/cross-check tests/cross-aarch64.sh tests/cross-armhf.sh
clean-local: clean-cross
clean-cross:
	-rm -rf tests/cross-aarch64 tests/cross-armhf
.PHONY: clean-cross

# pipenetd: the wire format, then real daemons on loopback.
check_PROGRAMS += tests/test-frame
tests_test_frame_SOURCES = tests/test-frame.c tests/tap.h
tests_test_frame_LDADD = daemon/libpndaemon.a $(PN_OPS_LDADD)
TESTS += tests/test-frame

check_PROGRAMS += tests/test-planner
tests_test_planner_SOURCES = tests/test-planner.c tests/tap.h
tests_test_planner_LDADD = daemon/libpndaemon.a -lm
TESTS += tests/test-planner

check_PROGRAMS += tests/json-get tests/make-frame tests/logits-cmp
tests_json_get_SOURCES = tests/json-get.c
tests_json_get_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_json_get_LDADD = $(JANSSON_LIBS)
tests_make_frame_SOURCES = tests/make-frame.c
tests_make_frame_LDADD = daemon/libpndaemon.a $(PN_OPS_LDADD)
tests_logits_cmp_SOURCES = tests/logits-cmp.c
tests_logits_cmp_LDADD = -lm
EXTRA_DIST += tests/cluster-lib.sh
TESTS += tests/cluster-splits.sh
EXTRA_DIST += tests/cluster-splits.sh
TESTS += tests/cluster-frames.sh
EXTRA_DIST += tests/cluster-frames.sh
TESTS += tests/cluster-queue.sh
EXTRA_DIST += tests/cluster-queue.sh
TESTS += tests/cluster-overhead.sh
EXTRA_DIST += tests/cluster-overhead.sh
TESTS += tests/cluster-control.sh
EXTRA_DIST += tests/cluster-control.sh
TESTS += tests/cluster-token.sh
EXTRA_DIST += tests/cluster-token.sh
TESTS += tests/cluster-failover.sh
EXTRA_DIST += tests/cluster-failover.sh
TESTS += tests/cluster-groups.sh tests/cluster-groups-netns.sh
EXTRA_DIST += tests/cluster-groups.sh tests/cluster-groups-netns.sh
TESTS += tests/cluster-netns.sh
EXTRA_DIST += tests/cluster-netns.sh
# A delaying TCP relay (no netem here) and its own test.
check_PROGRAMS += tests/tcp-relay
tests_tcp_relay_SOURCES = tests/tcp-relay.c
tests_tcp_relay_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS)
tests_tcp_relay_LDADD = $(LIBEVENT_LIBS)
TESTS += tests/relay.sh
EXTRA_DIST += tests/relay.sh
# 100,000 images with no growth in memory or descriptors (PIPENET_LONG=1),
# and a short run with every daemon under valgrind.
TESTS += tests/cluster-long.sh tests/cluster-valgrind.sh
EXTRA_DIST += tests/cluster-long.sh tests/cluster-valgrind.sh
# The REST API, live re-split and the event stream.
TESTS += tests/cluster-api.sh tests/cluster-resplit.sh tests/cluster-events.sh
TESTS += tests/cluster-plan.sh tests/cluster-adapt.sh
EXTRA_DIST += tests/cluster-plan.sh tests/cluster-adapt.sh tests/bench-plan
EXTRA_DIST += tests/cluster-api.sh tests/cluster-resplit.sh tests/cluster-events.sh
# The main job and the cluster benchmark (run by hand, not by make check).
EXTRA_DIST += scripts/demo scripts/build scripts/install-deps scripts/get-cifar10 tests/bench-cluster \
	tests/bench-groups
# The main job offline, in a copy of the checkout without ../shared.
TESTS += tests/demo-offline.sh
EXTRA_DIST += tests/demo-offline.sh

TESTS += tests/cli-plan.sh
EXTRA_DIST += tests/cli-plan.sh

# Fuzz targets, one per parser, built from the project's own objects.
PN_FUZZ_TARGETS = tests/fuzz-safetensors tests/fuzz-jpeg tests/fuzz-frame tests/fuzz-config \
	tests/fuzz-json tests/fuzz-http-head
PN_FUZZ_TARGETS += tests/fuzz-datapath
check_PROGRAMS += $(PN_FUZZ_TARGETS)
if FUZZING
PN_FUZZ_MAIN =
PN_FUZZ_LINK_FLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
else
# Without libFuzzer a small main replays the corpus.
check_LIBRARIES = tests/libfuzzmain.a
tests_libfuzzmain_a_SOURCES = tests/fuzz/standalone.c
PN_FUZZ_MAIN = tests/libfuzzmain.a
PN_FUZZ_LINK_FLAGS = $(AM_LDFLAGS)
endif
tests_fuzz_safetensors_SOURCES = tests/fuzz/safetensors.c
tests_fuzz_safetensors_LDADD = $(PN_FUZZ_MAIN) $(PN_KERNEL_LDADD)
tests_fuzz_safetensors_LDFLAGS = $(PN_FUZZ_LINK_FLAGS)
tests_fuzz_jpeg_SOURCES = tests/fuzz/jpeg.c
tests_fuzz_jpeg_LDADD = $(PN_FUZZ_MAIN) $(PN_DAEMON_LDADD)
tests_fuzz_jpeg_LDFLAGS = $(PN_FUZZ_LINK_FLAGS)
# A run's dataset name, resolved beneath a data directory.
tests_fuzz_datapath_SOURCES = tests/fuzz/datapath.c
tests_fuzz_datapath_LDADD = $(PN_FUZZ_MAIN) $(PN_DAEMON_LDADD)
tests_fuzz_datapath_LDFLAGS = $(PN_FUZZ_LINK_FLAGS)
tests_fuzz_frame_SOURCES = tests/fuzz/frame.c
tests_fuzz_frame_LDADD = $(PN_FUZZ_MAIN) $(PN_DAEMON_LDADD)
tests_fuzz_frame_LDFLAGS = $(PN_FUZZ_LINK_FLAGS)
tests_fuzz_config_SOURCES = tests/fuzz/config.c
tests_fuzz_config_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_fuzz_config_LDADD = $(PN_FUZZ_MAIN) $(PN_DAEMON_LDADD) $(JANSSON_LIBS)
tests_fuzz_config_LDFLAGS = $(PN_FUZZ_LINK_FLAGS)
# JSON request bodies, through pn_stage_configure of the 32x32 model.
tests_fuzz_json_SOURCES = tests/fuzz/json.c
tests_fuzz_json_CPPFLAGS = $(AM_CPPFLAGS) -DPN_TOP_SRCDIR='"$(abs_top_srcdir)"'
tests_fuzz_json_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(LIBEVENT_CFLAGS)
tests_fuzz_json_LDADD = $(PN_FUZZ_MAIN) $(PN_DAEMON_LDADD) $(LIBEVENT_LIBS) $(JANSSON_LIBS)
tests_fuzz_json_LDFLAGS = $(PN_FUZZ_LINK_FLAGS)
# Request heads as the HTTP server reads them before evhttp.
tests_fuzz_http_head_SOURCES = tests/fuzz/http-head.c
tests_fuzz_http_head_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(LIBEVENT_CFLAGS)
tests_fuzz_http_head_LDADD = $(PN_FUZZ_MAIN) $(PN_DAEMON_LDADD) $(LIBEVENT_LIBS) $(JANSSON_LIBS)
tests_fuzz_http_head_LDFLAGS = $(PN_FUZZ_LINK_FLAGS)
TESTS += tests/fuzz.sh
EXTRA_DIST += tests/fuzz.sh tests/fuzz/standalone.c tests/fuzz/corpus

# The dashboard in headless Chromium (playwright-core from npm, installed
# into tests/browser/ of the build folder with the screenshots).
TESTS += tests/browser.sh
EXTRA_DIST += tests/browser.sh tests/browser/dashboard.mjs tests/browser/package.json
clean-local: clean-browser
clean-browser:
	-rm -rf tests/browser/node_modules tests/browser/*.png
	-test "$(srcdir)" = . || rm -f tests/browser/package.json
.PHONY: clean-browser

# systemd notification and installation.
check_PROGRAMS += tests/notify-listen
tests_notify_listen_SOURCES = tests/notify-listen.c
TESTS += tests/daemon-notify.sh tests/install.sh
EXTRA_DIST += tests/daemon-notify.sh tests/install.sh

# Allocation failures: an LD_PRELOAD shim that fails the N-th allocation.
check_DATA = tests/failalloc.so
CLEANFILES += tests/failalloc.so
tests/failalloc.so: $(srcdir)/tests/failalloc.c
	$(AM_V_CC)$(MKDIR_P) tests && $(CC) -shared -fPIC -O2 -o $@ $(srcdir)/tests/failalloc.c
TESTS += tests/failalloc.sh
EXTRA_DIST += tests/failalloc.sh tests/failalloc.c
TESTS += tests/cluster-hostile.sh
EXTRA_DIST += tests/cluster-hostile.sh
check_PROGRAMS += tests/fake-peer
tests_fake_peer_SOURCES = tests/fake-peer.c
TESTS += tests/cluster-auth.sh
EXTRA_DIST += tests/cluster-auth.sh
# Hostile clients on a LAN: slowloris, withheld bodies (tests/slow-clients).
check_PROGRAMS += tests/slow-clients
tests_slow_clients_SOURCES = tests/slow-clients.c
TESTS += tests/cluster-lan.sh
EXTRA_DIST += tests/cluster-lan.sh
TESTS += tests/cluster-reference.sh
TESTS += tests/cluster-int8.sh
EXTRA_DIST += tests/cluster-int8.sh
EXTRA_DIST += tests/cluster-reference.sh tests/bench-load
