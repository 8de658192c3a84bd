# samples/: the CIFAR-10 sample (samples/README), installed beside the
# models as $(pkgdatadir)/samples/... so an installed node can run a
# demo run from the dashboard out of the box.
nobase_dist_pkgdata_DATA = samples/README samples/cifar10/test_every10th.bin \
	samples/cifar10/batches.meta.txt \
	samples/cifar10/jpeg/airplane/0000.jpg samples/cifar10/jpeg/automobile/0000.jpg \
	samples/cifar10/jpeg/bird/0000.jpg samples/cifar10/jpeg/cat/0000.jpg \
	samples/cifar10/jpeg/deer/0000.jpg samples/cifar10/jpeg/dog/0000.jpg \
	samples/cifar10/jpeg/frog/0000.jpg samples/cifar10/jpeg/horse/0000.jpg \
	samples/cifar10/jpeg/ship/0000.jpg samples/cifar10/jpeg/truck/0000.jpg
