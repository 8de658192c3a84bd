# daemon/: pipenetd and the pipenet CLI. Knows nothing of SIMD.
noinst_LIBRARIES += daemon/libpndaemon.a
daemon_libpndaemon_a_SOURCES = \
	daemon/dataset.h daemon/dataset.c daemon/planner.h daemon/planner.c \
	daemon/hop.h daemon/hop.c
daemon_libpndaemon_a_SOURCES += \
	daemon/log.h daemon/log.c daemon/loop.h daemon/loop.c \
	daemon/http.h daemon/http.c daemon/client.h daemon/client.c daemon/tcpinfo.c \
	daemon/frame.h daemon/frame.c daemon/sha256.h daemon/sha256.c \
	daemon/settings.h daemon/settings.c daemon/stage.h daemon/stage.c \
	daemon/probe.h daemon/probe.c \
	daemon/coord.h daemon/coord_internal.h daemon/coord.c \
	daemon/coord_run.c daemon/coord_dispatch.c daemon/coord_epoch.c \
	daemon/coord_nodes.c daemon/coord_links.c daemon/coord_plan.c \
	daemon/coord_json.c daemon/coord_api.c daemon/coord_metrics.c \
	daemon/coord_history.c \
	daemon/events.h daemon/events.c \
	daemon/classify.h daemon/classify.c \
	daemon/notify.h daemon/notify.c \
	daemon/metrics.h daemon/metrics.c daemon/webfiles.h daemon/webfiles.c
daemon_libpndaemon_a_CFLAGS = $(AM_CFLAGS) $(LIBJPEG_CFLAGS)
daemon_libpndaemon_a_CFLAGS += $(LIBEVENT_CFLAGS) $(JANSSON_CFLAGS)
PN_DAEMON_LDADD = daemon/libpndaemon.a $(PN_KERNEL_LDADD) $(LIBJPEG_LIBS)

bin_PROGRAMS += pipenet
pipenet_SOURCES = daemon/pipenet.c
pipenet_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
pipenet_LDADD = $(PN_DAEMON_LDADD) $(JANSSON_LIBS)

# pipenetd: stages and the coordinator (one binary, one event loop).
bin_PROGRAMS += pipenetd
pipenetd_SOURCES = daemon/pipenetd.c
pipenetd_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(JANSSON_CFLAGS)
pipenetd_LDADD = $(PN_DAEMON_LDADD) $(LIBEVENT_LIBS) $(JANSSON_LIBS)
EXTRA_DIST += etc/pipenet.example.json
