#!/bin/sh
# TAP: cross-build pipenet for armhf and run its suite under qemu-arm
# (tests/cross-check), in tests/cross-armhf of the build folder. Skipped when
# PIPENET_SKIP_CROSS=1 or the cross compiler or qemu is missing.
exec bash "${top_srcdir:-.}/tests/cross-check" armhf --tap \
	--builddir "${top_builddir:-.}/tests/cross-armhf"
