#!/usr/bin/env python3
"""make-corpus-virtq.py -- regenerate tests/fuzz/corpus-virtq (see
fuzz_virtq.c for the input format).  The corpus is checked in; run this only
to refresh it.  Each file is one scenario: well-formed requests of every
type, and the malformed chains the hvcore contract names."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus-virtq")
NEXT, WRITE, INDIRECT = 1, 2, 4
IN, OUT_T, FLUSH, GET_ID, DISCARD, WZ = 0, 1, 4, 8, 11, 13


class Ram:
    def __init__(self, qsize, flags=0):
        self.qsize, self.flags = qsize, flags
        self.b = bytearray(0x8000)
        self.avail = 0

    def put(self, addr, data):
        self.b[addr:addr + len(data)] = data

    def desc(self, i, addr, length, flags, nxt=0):
        self.put(16 * i, struct.pack("<QIHH", addr, length, flags, nxt))

    def offer(self, head):
        self.put(0x1004 + 2 * (self.avail % self.qsize), struct.pack("<H", head))
        self.avail += 1
        self.put(0x1002, struct.pack("<H", self.avail))

    def request(self, first, rtype, sector, data_len, dev_writes, payload=b""):
        """Chain first, first+1, first+2: header, data, status."""
        hdr = 0x3000 + 0x100 * first
        self.put(hdr, struct.pack("<IIQ", rtype, 0, sector))
        status = 0x7000 + first
        if data_len:
            data = 0x4000 + 0x400 * first
            self.put(data, payload)
            self.desc(first, hdr, 16, NEXT, first + 1)
            self.desc(first + 1, data, data_len, NEXT | (WRITE if dev_writes else 0), first + 2)
            self.desc(first + 2, status, 1, WRITE)
        else:
            self.desc(first, hdr, 16, NEXT, first + 1)
            self.desc(first + 1, status, 1, WRITE)
        self.offer(first)

    def save(self, name):
        log2 = self.qsize.bit_length() - 1
        end = len(self.b.rstrip(b"\0"))
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(bytes([log2, self.flags]) + bytes(self.b[:end]))


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.unlink(os.path.join(OUT, f))

    r = Ram(8); r.request(0, IN, 0, 1024, True); r.save("read")
    r = Ram(8)
    r.request(0, OUT_T, 16, 512, False, b"\xab" * 512)
    r.request(3, FLUSH, 0, 0, False)
    r.request(5, GET_ID, 0, 20, True)
    r.save("write-flush-getid")
    r = Ram(16, 1)
    r.request(0, OUT_T, 0, 1024, False, b"\x11" * 1024)
    r.request(3, IN, 0, 1024, True)
    r.put(0x1004 + 2 * 16, struct.pack("<H", 1))   # used_event
    r.save("event-idx")
    seg = struct.pack("<QII", 0, 8, 0) + struct.pack("<QII", 64, 8, 1)
    r = Ram(8); r.request(0, WZ, 0, 32, False, seg); r.save("write-zeroes")
    r = Ram(8); r.request(0, DISCARD, 0, 32, False, seg); r.save("discard-bad-flags")
    r = Ram(8, 2); r.request(0, OUT_T, 0, 512, False, b"x" * 512); r.save("ro-write")
    r = Ram(8); r.request(0, IN, 511, 1024, True); r.save("read-past-end")
    r = Ram(8); r.request(0, 99, 0, 0, False); r.save("unsupported")
    r = Ram(8); r.offer(9); r.save("head-out-of-range")
    r = Ram(8); r.desc(0, 0x3000, 16, NEXT, 1); r.desc(1, 0x7000, 1, NEXT | WRITE, 0)
    r.offer(0); r.save("loop")
    r = Ram(8); r.desc(0, 0x3000, 16, NEXT, 300); r.offer(0); r.save("next-out-of-range")
    r = Ram(8); r.desc(0, 0x3000, 16, NEXT, 1); r.desc(1, 0xfff0, 512, NEXT | WRITE, 2)
    r.desc(2, 0x7000, 1, WRITE); r.offer(0); r.save("buffer-outside-ram")
    r = Ram(8); r.desc(0, 0x3000, 0xffffffff, NEXT, 1); r.desc(1, 0x3000, 0xffffffff, NEXT | WRITE, 2)
    r.desc(2, 0x7000, 1, WRITE); r.offer(0); r.save("huge-length")
    r = Ram(8); r.desc(0, 0x3000, 16, NEXT, 1); r.desc(1, 1 << 45, 1, WRITE); r.offer(0)
    r.save("status-outside-ram")
    r = Ram(8); r.desc(0, 0x3000, 16, INDIRECT, 0); r.offer(0); r.save("indirect")
    r = Ram(8); r.request(0, IN, 0, 512, True); r.put(0x1002, struct.pack("<H", 40))
    r.save("avail-idx-jump")
    r = Ram(256)
    for i in range(0, 240, 3):
        r.request(i, IN if i % 2 else OUT_T, i, 512, i % 2 == 1, b"z" * 512)
    r.save("many")


if __name__ == "__main__":
    main()
