#!/bin/sh
# TAP: cross-build pipenet for aarch64 and run its suite under qemu-aarch64
# (tests/cross-check), in tests/cross-aarch64 of the build folder. Skipped when
# PIPENET_SKIP_CROSS=1 or the cross compiler or qemu is missing.
exec bash "${top_srcdir:-.}/tests/cross-check" aarch64 --tap \
	--builddir "${top_builddir:-.}/tests/cross-aarch64"
