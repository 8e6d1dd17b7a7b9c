/*
 * i8042.h -- just enough of the PC keyboard controller (ports 0x60, 0x64)
 * and of System Control Port A (0x92) to reset the machine: command 0xfe
 * written to 0x64, or bit 0 written to 0x92, ends the VM with status 0.
 * No keyboard: the status register says "no data" and commands are eaten.
 */
#ifndef HVCORE_I8042_H
#define HVCORE_I8042_H

#include "vm.h"

int i8042_init(struct vm *vm);

#endif /* HVCORE_I8042_H */
