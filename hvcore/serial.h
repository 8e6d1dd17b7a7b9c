/*
 * serial.h -- 8250/16550A UART (COM1 0x3f8 IRQ 4, COM2 0x2f8 IRQ 3).
 *
 * Output (THR) goes to a file descriptor at once; input comes from an
 * optional file descriptor, read by a small thread.  The FIFO is not
 * modelled: the transmitter is always empty (LSR 0x60), so polling drivers
 * never wait.  Interrupts (THR empty, received data) are edge pulses on
 * the ISA IRQ, as on real hardware after the OUT2 gate.
 */
#ifndef HVCORE_SERIAL_H
#define HVCORE_SERIAL_H

#include <pthread.h>
#include <stdint.h>

#include "vm.h"

#define SERIAL_RX_BUF 256

struct serial {
	struct vm *vm;
	pthread_mutex_t lock;
	unsigned irq;
	int out_fd;			/* -1: output dropped */
	int in_fd;			/* -1: no input */
	pthread_t rx_thread;
	int rx_started;
	uint8_t ier, iir_thri, lcr, mcr, lsr_extra, msr, scr, dll, dlm;
	uint8_t rx[SERIAL_RX_BUF];	/* received bytes, ring */
	unsigned rx_head, rx_count;
	uint64_t first_tx_ns;		/* when the first byte went out, 0 = none */
};

/** Register the UART's ports at @base with @irq.  @out_fd / @in_fd may be
 *  -1.  Returns 0 or -errno. */
int serial_init(struct serial *s, struct vm *vm, uint16_t base, unsigned irq,
		int out_fd, int in_fd);
void serial_stop(struct serial *s);

#endif /* HVCORE_SERIAL_H */
