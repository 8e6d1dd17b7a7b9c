/*
 * serial.c -- 8250 UART, see serial.h.  Registers (offset from base):
 *   0 RBR (read) / THR (write) / DLL when LCR.DLAB   4 MCR
 *   1 IER / DLM when LCR.DLAB                        5 LSR (read only)
 *   2 IIR (read) / FCR (write)                       6 MSR (read only)
 *   3 LCR                                            7 SCR
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "serial.h"
#include "util.h"

#define LCR_DLAB   0x80
#define MCR_LOOP   0x10
#define MCR_OUT2   0x08
#define IER_RDI    0x01
#define IER_THRI   0x02
#define IIR_NONE   0x01
#define IIR_THRI   0x02
#define IIR_RDI    0x04
#define IIR_FIFO   0xc0
#define LSR_DR     0x01
#define LSR_THRE   0x20
#define LSR_TEMT   0x40

/* Pending interrupt identification, highest priority first. */
static uint8_t iir(const struct serial *s)
{
	if ((s->ier & IER_RDI) && s->rx_count)
		return IIR_RDI;
	if ((s->ier & IER_THRI) && s->iir_thri)
		return IIR_THRI;
	return IIR_NONE;
}

/* Called with the lock held after any change: a rising interrupt is a
 * pulse on the IRQ (gated by OUT2 as on PCs). */
static void update_irq(struct serial *s, uint8_t before)
{
	uint8_t now = iir(s);

	if (now != IIR_NONE && now != before && (s->mcr & MCR_OUT2))
		vm_irq_pulse(s->vm, s->irq);
}

static void tx(struct serial *s, uint8_t c)
{
	if (s->mcr & MCR_LOOP) {
		if (s->rx_count < SERIAL_RX_BUF)
			s->rx[(s->rx_head + s->rx_count++) % SERIAL_RX_BUF] = c;
		return;
	}
	if (!s->first_tx_ns)
		s->first_tx_ns = hv_now_ns();
	if (s->out_fd >= 0) {
		ssize_t n;

		do
			n = write(s->out_fd, &c, 1);
		while (n < 0 && errno == EINTR);
	}
}

static uint8_t msr(const struct serial *s)
{
	if (s->mcr & MCR_LOOP)		/* DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD */
		return (uint8_t)(((s->mcr & 1) << 5) | ((s->mcr & 2) << 3) |
				 ((s->mcr & 4) << 4) | ((s->mcr & 8) << 4));
	return 0xb0;			/* DCD, DSR, CTS */
}

static uint8_t reg_read(struct serial *s, unsigned off)
{
	uint8_t v = 0;

	switch (off) {
	case 0:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		if (s->rx_count) {
			v = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % SERIAL_RX_BUF;
			s->rx_count--;
		}
		return v;
	case 1:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case 2:
		v = iir(s);
		if (v == IIR_THRI)
			s->iir_thri = 0;	/* reading IIR clears THRI */
		return v | IIR_FIFO;
	case 3:
		return s->lcr;
	case 4:
		return s->mcr;
	case 5:
		return LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0);
	case 6:
		return msr(s);
	default:
		return s->scr;
	}
}

static void reg_write(struct serial *s, unsigned off, uint8_t v)
{
	switch (off) {
	case 0:
		if (s->lcr & LCR_DLAB) {
			s->dll = v;
		} else {
			tx(s, v);
			s->iir_thri = 1;	/* transmitter empty again at once */
		}
		break;
	case 1:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
		} else {
			if (!(s->ier & IER_THRI) && (v & IER_THRI))
				s->iir_thri = 1;
			s->ier = v & 0x0f;
		}
		break;
	case 2:
		if (v & 0x02) {		/* FCR: clear receive FIFO */
			s->rx_count = 0;
		}
		break;
	case 3:
		s->lcr = v;
		break;
	case 4:
		s->mcr = v & 0x1f;
		break;
	case 7:
		s->scr = v;
		break;
	default:
		break;		/* LSR, MSR: read only */
	}
}

static void serial_io(void *opaque, uint64_t off, uint8_t *data, unsigned len,
		      bool write)
{
	struct serial *s = opaque;
	uint8_t before;

	pthread_mutex_lock(&s->lock);
	before = iir(s);
	if (write)
		reg_write(s, (unsigned)off, data[0]);
	else
		data[0] = reg_read(s, (unsigned)off);
	if (len > 1 && !write)
		memset(data + 1, 0, len - 1);
	update_irq(s, before);
	pthread_mutex_unlock(&s->lock);
}

static void *rx_thread(void *arg)
{
	struct serial *s = arg;
	uint8_t buf[64];

	for (;;) {
		ssize_t n = read(s->in_fd, buf, sizeof(buf));
		uint8_t before;

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return NULL;
		}
		pthread_mutex_lock(&s->lock);
		before = iir(s);
		for (ssize_t i = 0; i < n && s->rx_count < SERIAL_RX_BUF; i++)
			s->rx[(s->rx_head + s->rx_count++) % SERIAL_RX_BUF] = buf[i];
		update_irq(s, before);
		pthread_mutex_unlock(&s->lock);
	}
}

int serial_init(struct serial *s, struct vm *vm, uint16_t base, unsigned irq,
		int out_fd, int in_fd)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->vm = vm;
	s->irq = irq;
	s->out_fd = out_fd;
	s->in_fd = in_fd;
	s->mcr = MCR_OUT2;
	pthread_mutex_init(&s->lock, NULL);
	rc = iobus_add(&vm->pio, base, 8, serial_io, s);
	if (rc < 0)
		return hv_fail(rc, "serial port 0x%x: cannot register", base);
	if (in_fd >= 0) {
		rc = pthread_create(&s->rx_thread, NULL, rx_thread, s);
		if (rc)
			return hv_fail(-rc, "serial: cannot start the input thread");
		s->rx_started = 1;
	}
	return 0;
}

void serial_stop(struct serial *s)
{
	if (s->rx_started) {
		pthread_cancel(s->rx_thread);	/* it only ever blocks in read() */
		pthread_join(s->rx_thread, NULL);
		s->rx_started = 0;
	}
}
