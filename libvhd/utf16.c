/*
 * utf16.c -- UTF-8 <-> UTF-16 for parent names (UTF-16BE on disk) and
 * locators (UTF-16LE).  Code units here are host-order integers; the byte
 * order is applied by the codecs.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vhd_codec.h"

/* Decode one UTF-8 sequence; returns its length or -EILSEQ. */
static int utf8_decode(const unsigned char *s, uint32_t *cp)
{
	uint32_t c = s[0];
	int n, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xE0) == 0xC0) {
		n = 2;
		c &= 0x1F;
	} else if ((c & 0xF0) == 0xE0) {
		n = 3;
		c &= 0x0F;
	} else if ((c & 0xF8) == 0xF0) {
		n = 4;
		c &= 0x07;
	} else {
		return -EILSEQ;
	}
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return -EILSEQ;
		c = c << 6 | (s[i] & 0x3F);
	}
	/* Reject overlong forms, surrogates and values past U+10FFFF. */
	if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) ||
	    (n == 4 && c < 0x10000) || c > 0x10FFFF ||
	    (c >= 0xD800 && c <= 0xDFFF))
		return -EILSEQ;
	*cp = c;
	return n;
}

int vhd_utf8_to_utf16(const char *str, uint16_t *out, size_t max_units)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = 0;

	while (*s) {
		uint32_t cp;
		int len = utf8_decode(s, &cp);

		if (len < 0)
			return len;
		s += len;
		if (cp >= 0x10000) {
			if (n + 2 > max_units)
				return -ENAMETOOLONG;
			cp -= 0x10000;
			out[n++] = (uint16_t)(0xD800 | cp >> 10);
			out[n++] = (uint16_t)(0xDC00 | (cp & 0x3FF));
		} else {
			if (n + 1 > max_units)
				return -ENAMETOOLONG;
			out[n++] = (uint16_t)cp;
		}
	}
	return (int)n;
}

static int utf8_put(uint32_t cp, char *out, size_t size, size_t *pos)
{
	unsigned char buf[4];
	int n;

	if (cp < 0x80) {
		buf[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		buf[0] = (unsigned char)(0xC0 | cp >> 6);
		buf[1] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		buf[0] = (unsigned char)(0xE0 | cp >> 12);
		buf[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
		buf[2] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		buf[0] = (unsigned char)(0xF0 | cp >> 18);
		buf[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
		buf[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
		buf[3] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	if (*pos + n + 1 > size)
		return -ENAMETOOLONG;
	for (int i = 0; i < n; i++)
		out[(*pos)++] = (char)buf[i];
	return 0;
}

int vhd_utf16_to_utf8(const uint16_t *in, size_t units, char *out,
		      size_t out_size, bool lenient)
{
	size_t pos = 0;
	int rc;

	if (out_size == 0)
		return -ENAMETOOLONG;
	for (size_t i = 0; i < units; i++) {
		uint32_t cp = in[i];

		if (cp == 0)
			break;
		if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < units &&
		    in[i + 1] >= 0xDC00 && in[i + 1] <= 0xDFFF) {
			cp = 0x10000 + ((cp - 0xD800) << 10) + (in[i + 1] - 0xDC00);
			i++;
		} else if (cp >= 0xD800 && cp <= 0xDFFF) {
			if (!lenient)
				return -EILSEQ;
			cp = 0xFFFD;
		}
		rc = utf8_put(cp, out, out_size, &pos);
		if (rc < 0)
			return rc;
	}
	out[pos] = '\0';
	return (int)pos;
}
