#!/bin/sh
# TAP: cross-build pipenet for armhf and run its suite under qemu-arm
# (tests/cross-check), in tests/cross-armhf of the build folder. Skipped when
# PIPENET_SKIP_CROSS=1 or not on x86_64; fails naming the Debian package
# when the cross compiler, its C library or qemu-user is missing.
# The kernel and model tests, and a cluster checked against PyTorch: the
# rest of the suite is architecture-independent and slow under emulation.
exec bash "${top_srcdir:-.}/tests/cross-check" armhf --tap \
	--tests "tests/test-kernels tests/test-quant tests/test-preprocess tests/test-crc32c tests/test-model tests/test-dataset tests/test-safetensors tests/test-frame tests/test-planner tests/fuzz.sh tests/cluster-reference.sh" \
	--builddir "${top_builddir:-.}/tests/cross-armhf"
