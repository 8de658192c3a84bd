# kernels/: the compute library. No libevent, no sockets.
# libpnops.a: the kernel tables and the scalar reference;
# libpnkernels.a: model loading, the graph, preprocessing.
noinst_LIBRARIES += kernels/libpnops.a kernels/libpnkernels.a
kernels_libpnops_a_SOURCES = \
	kernels/ops.h kernels/ops.c kernels/ref.h kernels/ops_ref.c \
	kernels/conv_ref.c kernels/depthwise_ref.c kernels/pointwise_ref.c \
	kernels/misc_ref.c kernels/crc32c.h kernels/crc32c.c \
	kernels/quant.h kernels/quant.c kernels/qops.h kernels/qops.c \
	kernels/qops_ref.c
kernels_libpnkernels_a_SOURCES = \
	kernels/safetensors.h kernels/safetensors.c \
	kernels/model.h kernels/model.c kernels/fold.h \
	kernels/qmodel.h kernels/qmodel.c kernels/quantize.h kernels/quantize.c \
	kernels/preprocess.h kernels/preprocess.c
kernels_libpnkernels_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
PN_SIMD_LIBS =

# Only the SIMD files get SIMD flags: each ISA is its own small library.
if PN_X86
# $(FUZZ_SIMD_CFLAGS): in a fuzzing build, no sanitizers in the SIMD
# kernels, which no fuzz target runs (they use the scalar table) and in
# which clang's ASan + UBSan take minutes a file.
noinst_LIBRARIES += kernels/libpn_avx2.a kernels/libpn_avx512.a
kernels_libpn_avx2_a_SOURCES = kernels/x86.h kernels/ops_avx2.c \
	kernels/pointwise_avx2.c kernels/depthwise_avx2.c \
	kernels/conv_avx2.c kernels/misc_avx2.c \
	kernels/qx86.h kernels/qim2col.h kernels/qdw_rows.h kernels/qops_avx2.c kernels/qpointwise_avx2.c \
	kernels/qdepthwise_avx2.c kernels/qconvert_avx2.c
kernels_libpn_avx2_a_CFLAGS = $(AM_CFLAGS) -mavx2 -mfma -mf16c $(FUZZ_SIMD_CFLAGS)
kernels_libpn_avx512_a_SOURCES = kernels/x86.h kernels/ops_avx512.c \
	kernels/pointwise_avx512.c kernels/depthwise_avx512.c \
	kernels/conv_avx512.c kernels/misc_avx512.c
kernels_libpn_avx512_a_CFLAGS = $(AM_CFLAGS) -mavx512f -mavx2 -mfma -mf16c $(FUZZ_SIMD_CFLAGS)
PN_SIMD_LIBS += kernels/libpn_avx2.a kernels/libpn_avx512.a
# The reference again, vectorised and bit-identical (ref_avx2.c): no -mfma.
noinst_LIBRARIES += kernels/libpn_refavx2.a
kernels_libpn_refavx2_a_SOURCES = kernels/ref_avx2.c
kernels_libpn_refavx2_a_CFLAGS = $(AM_CFLAGS) -mavx2
PN_SIMD_LIBS += kernels/libpn_refavx2.a
# int8 on AVX-512 needs BW and VL (byte masks); VNNI only for vpdpbusd.
noinst_LIBRARIES += kernels/libpn_qavx512.a kernels/libpn_qvnni.a
kernels_libpn_qavx512_a_SOURCES = kernels/qx86.h kernels/qim2col.h kernels/qdw_rows.h kernels/qdw_avx512.h \
	kernels/qops_avx512.c \
	kernels/qpointwise_avx512.c kernels/qdepthwise_avx512.c \
	kernels/qconvert_avx512.c
kernels_libpn_qavx512_a_CFLAGS = $(AM_CFLAGS) -mavx512f -mavx512bw -mavx512vl -mavx2 -mfma \
	$(FUZZ_SIMD_CFLAGS)
kernels_libpn_qvnni_a_SOURCES = kernels/qx86.h kernels/qdw_rows.h kernels/qdw_avx512.h kernels/qpack4.h \
	kernels/qpointwise_avx512vnni.c kernels/qdepthwise_avx512vnni.c
kernels_libpn_qvnni_a_CFLAGS = $(AM_CFLAGS) -mavx512f -mavx512bw -mavx512vl -mavx512vnni \
	-mavx2 -mfma $(FUZZ_SIMD_CFLAGS)
PN_SIMD_LIBS += kernels/libpn_qavx512.a kernels/libpn_qvnni.a
noinst_LIBRARIES += kernels/libpn_crc_sse42.a
kernels_libpn_crc_sse42_a_SOURCES = kernels/crc32c_sse42.c
kernels_libpn_crc_sse42_a_CFLAGS = $(AM_CFLAGS) -msse4.2
PN_SIMD_LIBS += kernels/libpn_crc_sse42.a
endif

if PN_NEON
noinst_LIBRARIES += kernels/libpn_neon.a
kernels_libpn_neon_a_SOURCES = kernels/neon.h kernels/ops_neon.c \
	kernels/pointwise_neon.c kernels/depthwise_neon.c \
	kernels/conv_neon.c kernels/misc_neon.c \
	kernels/qneon.h kernels/qim2col.h kernels/qops_neon.c kernels/qpointwise_neon.c \
	kernels/qdepthwise_neon.c kernels/qconvert_neon.c
kernels_libpn_neon_a_CFLAGS = $(AM_CFLAGS) $(NEON_CFLAGS)
PN_SIMD_LIBS += kernels/libpn_neon.a
endif
# SDOT (ARMv8.2 dot product) for the int8 pointwise on aarch64 only.
if PN_NEON_DOT
noinst_LIBRARIES += kernels/libpn_qneondot.a
kernels_libpn_qneondot_a_SOURCES = kernels/qneon.h kernels/qim2col.h kernels/qpack4.h \
	kernels/qdw_rows.h kernels/qpointwise_neondot.c kernels/qdepthwise_neondot.c
kernels_libpn_qneondot_a_CFLAGS = $(AM_CFLAGS) $(NEON_DOT_CFLAGS)
PN_SIMD_LIBS += kernels/libpn_qneondot.a
endif

if PN_ARM_CRC
noinst_LIBRARIES += kernels/libpn_crc_armv8.a
kernels_libpn_crc_armv8_a_SOURCES = kernels/crc32c_armv8.c
kernels_libpn_crc_armv8_a_CFLAGS = $(AM_CFLAGS) $(ARM_CRC_CFLAGS)
PN_SIMD_LIBS += kernels/libpn_crc_armv8.a
endif

# ops.c names every ISA table and the tables may call the reference for
# edge cases, hence the library twice.
PN_OPS_LDADD = kernels/libpnops.a $(PN_SIMD_LIBS) kernels/libpnops.a -lm
PN_KERNEL_LDADD = kernels/libpnkernels.a $(PN_OPS_LDADD) $(JANSSON_LIBS)
