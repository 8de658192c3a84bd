# etc/: the example configuration and the systemd units.
pkgsysconfdir = $(sysconfdir)/pipenet
systemdunitdir = @SYSTEMD_UNIT_DIR@
systemdunit_DATA = etc/pipenetd.service etc/pipenetd@.service
EXTRA_DIST += etc/pipenetd.service.in etc/pipenetd@.service.in
CLEANFILES += etc/pipenetd.service etc/pipenetd@.service etc/pipenet.json
noinst_DATA = etc/pipenet.json

etc/pipenetd.service: $(srcdir)/etc/pipenetd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) etc && sed -e 's|@bindir[@]|$(bindir)|g' \
		-e 's|@sysconfdir[@]|$(sysconfdir)|g' -e 's|@pkgdatadir[@]|$(pkgdatadir)|g' \
		$(srcdir)/etc/pipenetd.service.in >$@
etc/pipenetd@.service: $(srcdir)/etc/pipenetd@.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) etc && sed -e 's|@bindir[@]|$(bindir)|g' \
		-e 's|@sysconfdir[@]|$(sysconfdir)|g' -e 's|@pkgdatadir[@]|$(pkgdatadir)|g' \
		$(srcdir)/etc/pipenetd@.service.in >$@

# The installed configuration: the example, reading the token from the
# token file installed beside it, with datasets in the coordinator unit's
# state directory (StateDirectory=pipenet).
etc/pipenet.json: $(srcdir)/etc/pipenet.example.json Makefile
	$(AM_V_GEN)$(MKDIR_P) etc && sed -e 's|"token_file": ""|"token_file": "$(pkgsysconfdir)/token"|' \
		-e 's|"data_dir": "[^"]*"|"data_dir": "/var/lib/pipenet"|' \
		$(srcdir)/etc/pipenet.example.json >$@

# The configuration (0640: it may hold the token) is installed unless one
# exists: an upgrade never overwrites the administrator's file, only takes
# away others' access to it. The token file gets a random token (256 bits
# from /dev/urandom, as hex), 0640, unless it exists: it is never
# overwritten. Uninstall removes the configuration only if it is still
# the one installed, and then the token with it.
install-data-local: etc/pipenet.json
	$(MKDIR_P) $(DESTDIR)$(pkgsysconfdir)
	if [ ! -e $(DESTDIR)$(pkgsysconfdir)/pipenet.json ]; then \
		$(INSTALL) -m 0640 etc/pipenet.json $(DESTDIR)$(pkgsysconfdir)/pipenet.json; \
	else \
		chmod o-rwx $(DESTDIR)$(pkgsysconfdir)/pipenet.json; \
	fi
	t=$(DESTDIR)$(pkgsysconfdir)/token; \
	if [ ! -e $$t ]; then \
		(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >$$t.tmp && echo >>$$t.tmp) && \
		[ "$$(wc -c <$$t.tmp)" -eq 65 ] && chmod 0640 $$t.tmp && mv $$t.tmp $$t || \
		{ rm -f $$t.tmp; echo "cannot make $$t from /dev/urandom" >&2; exit 1; }; \
	fi
uninstall-local: etc/pipenet.json
	if cmp -s etc/pipenet.json $(DESTDIR)$(pkgsysconfdir)/pipenet.json; then \
		rm -f $(DESTDIR)$(pkgsysconfdir)/pipenet.json $(DESTDIR)$(pkgsysconfdir)/token; \
	fi
	-rmdir $(DESTDIR)$(pkgsysconfdir) 2>/dev/null

dist_man_MANS = man/pipenet.1 man/pipenetd.8

# For tests/install.sh: where this build installs things.
pn-print-dirs:
	@echo "bindir=$(bindir) pkgdatadir=$(pkgdatadir) sysconfdir=$(sysconfdir)" \
		"mandir=$(mandir) systemdunitdir=$(systemdunitdir)"
.PHONY: pn-print-dirs
