/*
 * i8042.c -- see i8042.h.
 */
#include <string.h>

#include "i8042.h"
#include "util.h"

#define I8042_DATA    0x60
#define I8042_CMD     0x64
#define PORT_A        0x92
#define CMD_RESET     0xfe

/* 0x60..0x64: data at offset 0, status/command at offset 4. */
static void i8042_io(void *opaque, uint64_t off, uint8_t *data, unsigned len,
		     bool write)
{
	struct vm *vm = opaque;

	if (!write) {
		memset(data, 0, len);	/* no data, input buffer empty */
		return;
	}
	if (off == I8042_CMD - I8042_DATA && data[0] == CMD_RESET)
		vm_exit(vm, 0, NULL);
}

static void port_a_io(void *opaque, uint64_t off, uint8_t *data, unsigned len,
		      bool write)
{
	struct vm *vm = opaque;

	if (!write) {
		memset(data, 0, len);
		data[0] = 0x02;		/* A20 enabled */
		return;
	}
	if (data[0] & 1)
		vm_exit(vm, 0, NULL);
}

int i8042_init(struct vm *vm)
{
	int rc = iobus_add(&vm->pio, I8042_DATA, 5, i8042_io, vm);

	if (rc == 0)
		rc = iobus_add(&vm->pio, PORT_A, 1, port_a_io, vm);
	return rc < 0 ? hv_fail(rc, "i8042: cannot register its ports") : 0;
}
