# etc/: the example configuration and the systemd units.
pkgsysconfdir = $(sysconfdir)/pipenet
systemdunitdir = @SYSTEMD_UNIT_DIR@
systemdunit_DATA = etc/pipenetd.service etc/pipenetd@.service
EXTRA_DIST += etc/pipenetd.service.in etc/pipenetd@.service.in
CLEANFILES += etc/pipenetd.service etc/pipenetd@.service

etc/pipenetd.service: $(srcdir)/etc/pipenetd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) etc && sed -e 's|@bindir[@]|$(bindir)|g' \
		-e 's|@sysconfdir[@]|$(sysconfdir)|g' $(srcdir)/etc/pipenetd.service.in >$@
etc/pipenetd@.service: $(srcdir)/etc/pipenetd@.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) etc && sed -e 's|@bindir[@]|$(bindir)|g' \
		-e 's|@sysconfdir[@]|$(sysconfdir)|g' $(srcdir)/etc/pipenetd@.service.in >$@

# The example becomes the configuration unless one exists: an upgrade
# never overwrites the administrator's file. Uninstall removes it only if
# it is still the unmodified example.
install-data-local:
	$(MKDIR_P) $(DESTDIR)$(pkgsysconfdir)
	if [ ! -e $(DESTDIR)$(pkgsysconfdir)/pipenet.json ]; then \
		$(INSTALL_DATA) $(srcdir)/etc/pipenet.example.json $(DESTDIR)$(pkgsysconfdir)/pipenet.json; \
	fi
uninstall-local:
	if cmp -s $(srcdir)/etc/pipenet.example.json $(DESTDIR)$(pkgsysconfdir)/pipenet.json; then \
		rm -f $(DESTDIR)$(pkgsysconfdir)/pipenet.json; \
	fi
	-rmdir $(DESTDIR)$(pkgsysconfdir) 2>/dev/null

dist_man_MANS = man/pipenet.1 man/pipenetd.8

# For tests/install.sh: where this build installs things.
pn-print-dirs:
	@echo "bindir=$(bindir) pkgdatadir=$(pkgdatadir) sysconfdir=$(sysconfdir)" \
		"mandir=$(mandir) systemdunitdir=$(systemdunitdir)"
.PHONY: pn-print-dirs
