# hvcore: the KVM VMM.  Uses libvhd and passthrough through their public
# headers only.  Files with no KVM dependency (virtq, blk_req, blk_backend)
# are also linked into the virtqueue fuzz target and unit test.
HVCORE_SRCS := $(wildcard hvcore/*.c)
HVCORE_OBJS := $(HVCORE_SRCS:.c=.o)
HVCORE_PURE_OBJS := hvcore/virtq.o hvcore/blk_req.o hvcore/blk_backend.o
BINS += hvcore/hvcore

hvcore/main.o: CPPFLAGS += -DHVCORE_VERSION='"$(VERSION)"'

hvcore/hvcore: $(HVCORE_OBJS) $(PT_A) $(LIBVHD_A)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(HVCORE_OBJS) $(PT_A) $(LIBVHD_A) $(LIBVHD_LIBS)
