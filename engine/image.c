/* image: JPEG (libjpeg-turbo) and PNG (libpng) decoding to 8-bit RGB, and
 * open_clip's eval preprocessing, both on the CPU.
 *
 * The reference is Python: PIL.Image.open(f).convert("RGB") for decoding,
 * open_clip's transform (torchvision Resize(s, BICUBIC) on the PIL image,
 * CenterCrop(s), ToTensor, Normalize) for preprocessing. Both are matched bit
 * for bit where the libraries allow it, because an embedding service is
 * judged by whether its vectors equal the ones users computed offline.
 * docs/IMAGES.md has the measured differences and the reasons for each
 * choice made here.
 *
 * Decoders report errors by longjmp (libjpeg's error_exit, libpng's
 * png_error). Everything that changes between setjmp and a longjmp lives in
 * a heap-allocated decoder struct reached through a pointer that is set
 * before setjmp and never changed, so no local variable is indeterminate
 * after the jump (C11 7.13.2.1p3). */
#include "config.h"
#include "image.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef HAVE_JPEG
#include <jpeglib.h>
#include <jerror.h>
#endif
#ifdef HAVE_PNG
#include <png.h>
#endif

/* A progressive JPEG may carry any number of scans, each of which makes
 * libjpeg walk the whole coefficient buffer: a few kilobytes can cost
 * minutes of CPU. Real encoders write at most a few dozen scans. */
#define MMF_JPEG_MAX_SCANS 1000

#if defined(HAVE_JPEG) || defined(HAVE_PNG)
static int64_t limit_of(int64_t max_pixels)
{
	return max_pixels > 0 ? max_pixels : MMF_IMAGE_MAX_PIXELS_DEFAULT;
}

/* Megapixels for messages, exact and without trailing zeros ("900",
 * "12.192768", "0.003015"), so a limit and a size never print alike. */
static const char *mpx_str(int64_t px, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%lld.%06lld", (long long)(px / 1000000), (long long)(px % 1000000));
	if (n > 0 && (size_t)n < len) {
		while (buf[n - 1] == '0')
			buf[--n] = '\0';
		if (buf[n - 1] == '.')
			buf[n - 1] = '\0';
	}
	return buf;
}

/* The pixel-count check, made from the header before any pixel buffer
 * exists, so a 100-byte file claiming 100000 x 100000 costs nothing. */
static int check_size(int64_t w, int64_t h, int64_t max_pixels, mmf_err *err)
{
	char a[32], b[32];
	if (w <= 0 || h <= 0)
		return mmf_err_set(err, -EINVAL, "image: size %lld x %lld, expected both sides positive",
				   (long long)w, (long long)h);
	if (w * h > max_pixels)
		return mmf_err_set(err, -E2BIG, "image: %lld x %lld = %s Mpx is over the limit of %s Mpx", (long long)w,
				   (long long)h, mpx_str(w * h, a, sizeof a), mpx_str(max_pixels, b, sizeof b));
	return 0;
}

static int alloc_rgb(mmf_image *out, int w, int h, mmf_err *err)
{
	size_t n = (size_t)w * (size_t)h * 3;	/* w*h <= max_pixels: checked, and fits */
	out->rgb = malloc(n);
	if (!out->rgb)
		return mmf_err_set(err, -ENOMEM, "image: cannot allocate %zu bytes for %d x %d RGB", n, w, h);
	out->w = w;
	out->h = h;
	return 0;
}
#endif

/* ------------------------------------------------------------------ JPEG */
#ifdef HAVE_JPEG

struct jpeg_dec {
	struct jpeg_decompress_struct cinfo;
	struct jpeg_error_mgr jerr;
	struct jpeg_progress_mgr progress;
	jmp_buf jb;
	int in_header;	/* inside jpeg_read_header: before any entropy-coded data */
	int too_many_scans;
	JSAMPLE *row;	/* one scanline when it is not RGB already */
	char msg[JMSG_LENGTH_MAX];
};

static _Noreturn void jpeg_fail(j_common_ptr cinfo)
{
	struct jpeg_dec *d = cinfo->client_data;
	(*cinfo->err->format_message)(cinfo, d->msg);
	longjmp(d->jb, 1);
}

/* Warnings that leave every pixel intact are let through, as PIL does.
 * The others mean data is missing or corrupt; libjpeg would go on and
 * hand out grey or garbled blocks, which are an error here (PIL refuses
 * a truncated file too, but not corrupt data).
 *
 * JPEG has no checksum: when flipped bits still form valid Huffman codes,
 * the only sign is that the decoder leaves bytes unread at the end of a
 * scan ("N extraneous bytes before marker"). So extraneous bytes are
 * refused once entropy-coded data has begun, and let through only among
 * the header segments, where they change nothing. */
static void jpeg_message(j_common_ptr cinfo, int level)
{
	struct jpeg_dec *d = cinfo->client_data;
	if (level >= 0)
		return;	/* trace messages */
	switch (cinfo->err->msg_code) {
	case JWRN_EXTRANEOUS_DATA:
		if (!d->in_header)
			jpeg_fail(cinfo);
		cinfo->err->num_warnings++;
		return;
	case JWRN_JFIF_MAJOR:
	case JWRN_ADOBE_XFORM:
	case JWRN_BOGUS_ICC:	/* the ICC profile is not used */
		cinfo->err->num_warnings++;
		return;
	default:
		jpeg_fail(cinfo);
	}
}

/* The frame size from the first SOF segment, read before libjpeg runs so
 * that the pixel limit applies even to a file that is only headers.
 * Anything unexpected is left for libjpeg to report. */
static int jpeg_peek_size(const uint8_t *p, size_t len, int64_t max_pixels, mmf_err *err)
{
	size_t i = 2;
	while (i + 4 <= len && p[i] == 0xff) {
		uint8_t m = p[i + 1];
		if (m == 0xff) {	/* fill byte */
			i++;
			continue;
		}
		if (m == 0x01 || (m >= 0xd0 && m <= 0xd7)) {	/* no length */
			i += 2;
			continue;
		}
		if (m == 0xda || m == 0xd9)
			return 0;
		if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
			if (i + 9 > len)
				return 0;
			int h = p[i + 5] << 8 | p[i + 6], w = p[i + 7] << 8 | p[i + 8];
			return w && h ? check_size(w, h, max_pixels, err) : 0;
		}
		i += 2 + (size_t)(p[i + 2] << 8 | p[i + 3]);
	}
	return 0;
}

static void jpeg_quiet(j_common_ptr cinfo)
{
	(void)cinfo;	/* libjpeg's default prints to stderr */
}

static void jpeg_progress(j_common_ptr cinfo)
{
	struct jpeg_dec *d = cinfo->client_data;
	if (d->cinfo.input_scan_number > MMF_JPEG_MAX_SCANS) {
		d->too_many_scans = 1;
		longjmp(d->jb, 1);
	}
}

/* PIL reads 4-component JPEGs as Adobe-inverted CMYK ("CMYK;I") and
 * converts with R = (255-K) - (255-K)*C/255 in its integer form; with the
 * inversion folded in, K' and C' are the stored bytes. */
static inline uint8_t cmyk_to(uint8_t cs, uint8_t ks)
{
	int nk = ks, c = 255 - cs;
	int t = c * nk + 128;
	return (uint8_t)(nk - (((t >> 8) + t) >> 8));
}

static int jpeg_decode(const uint8_t *data, size_t len, int64_t max_pixels, mmf_image *out, mmf_err *err)
{
	int rc = jpeg_peek_size(data, len, max_pixels, err);
	if (rc < 0)
		return rc;
	struct jpeg_dec *d = calloc(1, sizeof *d);
	if (!d)
		return mmf_err_set(err, -ENOMEM, "image: cannot allocate the JPEG decoder");
	d->cinfo.err = jpeg_std_error(&d->jerr);
	d->jerr.error_exit = jpeg_fail;
	d->jerr.emit_message = jpeg_message;
	d->jerr.output_message = jpeg_quiet;
	d->cinfo.client_data = d;
	if (setjmp(d->jb)) {
		if (d->too_many_scans)
			rc = mmf_err_set(err, -EINVAL, "image: JPEG has more than %d scans, refused as a decoding bomb",
					 MMF_JPEG_MAX_SCANS);
		else
			rc = mmf_err_set(err, -EINVAL, "image: JPEG data is truncated or corrupt: %s", d->msg);
		goto fail;
	}
	jpeg_create_decompress(&d->cinfo);
	d->progress.progress_monitor = jpeg_progress;
	d->cinfo.progress = &d->progress;
	jpeg_mem_src(&d->cinfo, data, (unsigned long)len);
	d->in_header = 1;
	jpeg_read_header(&d->cinfo, TRUE);
	d->in_header = 0;

	rc = check_size(d->cinfo.image_width, d->cinfo.image_height, max_pixels, err);
	if (rc < 0)
		goto fail;
	/* What PIL asks libjpeg for: L, RGB or CMYK, by component count. */
	switch (d->cinfo.num_components) {
	case 1:
		d->cinfo.out_color_space = JCS_GRAYSCALE;
		break;
	case 3:
		d->cinfo.out_color_space = JCS_RGB;
		break;
	case 4:
		d->cinfo.out_color_space = JCS_CMYK;
		break;
	default:
		rc = mmf_err_set(err, -EINVAL, "image: JPEG has %d color components, expected 1, 3 or 4",
				 d->cinfo.num_components);
		goto fail;
	}
	jpeg_start_decompress(&d->cinfo);

	int w = (int)d->cinfo.output_width, h = (int)d->cinfo.output_height, nc = d->cinfo.output_components;
	rc = alloc_rgb(out, w, h, err);
	if (rc < 0)
		goto fail;
	if (nc != 3) {
		d->row = malloc((size_t)w * (size_t)nc);
		if (!d->row) {
			rc = mmf_err_set(err, -ENOMEM, "image: cannot allocate a %d-byte JPEG row", w * nc);
			goto fail;
		}
	}
	while (d->cinfo.output_scanline < d->cinfo.output_height) {
		uint8_t *dst = out->rgb + (size_t)d->cinfo.output_scanline * (size_t)w * 3;
		JSAMPROW rows[1] = {nc == 3 ? dst : d->row};
		if (jpeg_read_scanlines(&d->cinfo, rows, 1) != 1) {
			/* Only a suspending source returns 0; the memory source never does. */
			rc = mmf_err_set(err, -EINVAL, "image: JPEG decoder stopped at row %u of %d",
					 d->cinfo.output_scanline, h);
			goto fail;
		}
		const uint8_t *s = d->row;
		if (nc == 1) {
			for (int x = 0; x < w; x++)
				dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = s[x];
		} else if (nc == 4) {
			for (int x = 0; x < w; x++) {
				dst[3 * x + 0] = cmyk_to(s[4 * x + 0], s[4 * x + 3]);
				dst[3 * x + 1] = cmyk_to(s[4 * x + 1], s[4 * x + 3]);
				dst[3 * x + 2] = cmyk_to(s[4 * x + 2], s[4 * x + 3]);
			}
		}
	}
	/* Reads on to EOI: a file cut anywhere, even in its last two bytes,
	 * is refused, as PIL refuses it. */
	jpeg_finish_decompress(&d->cinfo);
	jpeg_destroy_decompress(&d->cinfo);
	free(d->row);
	free(d);
	return 0;
fail:
	jpeg_destroy_decompress(&d->cinfo);
	free(d->row);
	free(d);
	mmf_image_free(out);
	return rc;
}

#endif /* HAVE_JPEG */

/* ------------------------------------------------------------------ PNG */
#ifdef HAVE_PNG

struct png_dec {
	const uint8_t *data;
	size_t len, pos;
	png_structp png;
	png_infop info;
	uint8_t *samples;	/* the whole image as libpng hands it out, when not RGB */
	png_bytep *rows;
	char msg[256];
};

static _Noreturn void png_fail(png_structp png, png_const_charp msg)
{
	struct png_dec *d = png_get_error_ptr(png);
	snprintf(d->msg, sizeof d->msg, "%s", msg);
	png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp msg)
{
	/* Warnings (and libpng's benign errors) leave the pixels intact:
	 * bad ancillary chunks, odd ICC profiles. PIL ignores them too. */
	(void)png;
	(void)msg;
}

static void png_read_mem(png_structp png, png_bytep dst, size_t n)
{
	struct png_dec *d = png_get_io_ptr(png);
	if (n > d->len - d->pos)
		png_error(png, "unexpected end of data");
	memcpy(dst, d->data + d->pos, n);
	d->pos += n;
}

/* An index past the end of PLTE reads black, as in PIL (measured); the
 * palette is looked up here rather than by libpng so that tRNS never
 * becomes alpha on the way. */
static void png_palette(png_structp png, png_infop info, uint8_t pal[256][3])
{
	memset(pal, 0, 256 * sizeof pal[0]);
	png_colorp p = NULL;
	int n = 0;
	if (png_get_PLTE(png, info, &p, &n) & PNG_INFO_PLTE) {
		for (int i = 0; i < n && i < 256; i++) {
			pal[i][0] = p[i].red;
			pal[i][1] = p[i].green;
			pal[i][2] = p[i].blue;
		}
	}
}

static int png_decode(const uint8_t *data, size_t len, int64_t max_pixels, mmf_image *out, mmf_err *err)
{
	/* IHDR is the first chunk: its size is checked before libpng runs,
	 * so the limit applies even to a file that is only headers. */
	if (len >= 33 && !memcmp(data + 12, "IHDR", 4)) {
		uint32_t w = (uint32_t)data[16] << 24 | (uint32_t)data[17] << 16 | (uint32_t)data[18] << 8 | data[19];
		uint32_t h = (uint32_t)data[20] << 24 | (uint32_t)data[21] << 16 | (uint32_t)data[22] << 8 | data[23];
		if (w && h && w <= 0x7fffffff && h <= 0x7fffffff) {
			int rc = check_size(w, h, max_pixels, err);
			if (rc < 0)
				return rc;
		}
	}
	int rc;
	struct png_dec *d = calloc(1, sizeof *d);
	if (!d)
		return mmf_err_set(err, -ENOMEM, "image: cannot allocate the PNG decoder");
	d->data = data;
	d->len = len;
	d->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, d, png_fail, png_warn);
	if (!d->png) {
		free(d);
		return mmf_err_set(err, -ENOMEM, "image: cannot allocate the PNG decoder");
	}
	d->info = png_create_info_struct(d->png);
	if (!d->info) {
		rc = mmf_err_set(err, -ENOMEM, "image: cannot allocate the PNG decoder");
		goto fail;
	}
	if (setjmp(png_jmpbuf(d->png))) {
		rc = mmf_err_set(err, -EINVAL, "image: PNG data is truncated or corrupt: %s", d->msg);
		goto fail;
	}
	png_set_read_fn(d->png, d, png_read_mem);
	/* libpng's own limit (1e6 per side) would refuse with its message
	 * before ours; the pixel limit below is the one that applies. */
	png_set_user_limits(d->png, 0x7fffffff, 0x7fffffff);
	png_read_info(d->png, d->info);

	png_uint_32 w32, h32;
	int depth, ctype, interlace;
	png_get_IHDR(d->png, d->info, &w32, &h32, &depth, &ctype, &interlace, NULL, NULL);
	rc = check_size(w32, h32, max_pixels, err);
	if (rc < 0)
		goto fail;
	int w = (int)w32, h = (int)h32;

	/* What PIL does per type: 1/2/4-bit grey scaled to 0..255, palette
	 * indices looked up, 16-bit samples keep their high byte, except
	 * 16-bit grey ("I;16") which convert("RGB") clips at 255. tRNS is
	 * never turned into alpha; alpha is dropped. */
	int gray16 = ctype == PNG_COLOR_TYPE_GRAY && depth == 16;
	if (depth < 8)
		png_set_packing(d->png);
	if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8)
		png_set_expand_gray_1_2_4_to_8(d->png);
	if (depth == 16 && !gray16)
		png_set_strip_16(d->png);
	if (ctype & PNG_COLOR_MASK_ALPHA)
		png_set_strip_alpha(d->png);
	png_set_interlace_handling(d->png);
	png_read_update_info(d->png, d->info);

	size_t rowbytes = png_get_rowbytes(d->png, d->info);
	int ch = png_get_channels(d->png, d->info);
	size_t want = (size_t)w * (size_t)ch * (gray16 ? 2 : 1);
	if (rowbytes != want) {
		rc = mmf_err_set(err, -EINVAL, "image: PNG rows are %zu bytes after conversion, expected %zu", rowbytes,
				 want);
		goto fail;
	}
	rc = alloc_rgb(out, w, h, err);
	if (rc < 0)
		goto fail;
	int direct = ch == 3 && !gray16;
	if (!direct) {
		d->samples = malloc(rowbytes * (size_t)h);
		if (!d->samples) {
			rc = mmf_err_set(err, -ENOMEM, "image: cannot allocate %zu bytes for PNG samples",
					 rowbytes * (size_t)h);
			goto fail;
		}
	}
	d->rows = malloc((size_t)h * sizeof *d->rows);
	if (!d->rows) {
		rc = mmf_err_set(err, -ENOMEM, "image: cannot allocate %d PNG row pointers", h);
		goto fail;
	}
	for (int y = 0; y < h; y++)
		d->rows[y] = direct ? out->rgb + (size_t)y * (size_t)w * 3 : d->samples + (size_t)y * rowbytes;
	png_read_image(d->png, d->rows);
	/* Chunks after the image data (and IEND) are not read: PIL accepts a
	 * file cut after its last IDAT, and nothing there changes pixels. */

	if (!direct) {
		uint8_t pal[256][3];
		if (ctype == PNG_COLOR_TYPE_PALETTE)
			png_palette(d->png, d->info, pal);
		for (int y = 0; y < h; y++) {
			const uint8_t *s = d->rows[y];
			uint8_t *o = out->rgb + (size_t)y * (size_t)w * 3;
			for (int x = 0; x < w; x++, o += 3) {
				uint8_t v;
				if (ctype == PNG_COLOR_TYPE_PALETTE) {
					memcpy(o, pal[s[x]], 3);
					continue;
				}
				if (gray16)
					v = s[2 * x] ? 255 : s[2 * x + 1];	/* big-endian sample, clipped */
				else
					v = s[x];
				o[0] = o[1] = o[2] = v;
			}
		}
	}
	png_destroy_read_struct(&d->png, &d->info, NULL);
	free(d->rows);
	free(d->samples);
	free(d);
	return 0;
fail:
	png_destroy_read_struct(&d->png, d->info ? &d->info : NULL, NULL);
	free(d->rows);
	free(d->samples);
	free(d);
	mmf_image_free(out);
	return rc;
}

#endif /* HAVE_PNG */

/* ------------------------------------------------------------------ entry points */

static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

int mmf_image_decode(const void *data, size_t len, int64_t max_pixels, mmf_image *out, mmf_err *err)
{
	const uint8_t *p = data;
	(void)max_pixels;	/* unused when built without both libraries */
	if (!out)
		return mmf_err_set(err, -EINVAL, "image: no output image given");
	memset(out, 0, sizeof *out);
	if (len == 0)
		return mmf_err_set(err, -EINVAL, "image: 0 bytes");
	if (!p)
		return mmf_err_set(err, -EINVAL, "image: %zu bytes at NULL", len);
	if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) {
#ifdef HAVE_JPEG
		return jpeg_decode(p, len, limit_of(max_pixels), out, err);
#else
		return mmf_err_set(err, -ENOTSUP, "image: JPEG support was not built (configure found no libjpeg)");
#endif
	}
	if (len >= sizeof png_magic && !memcmp(p, png_magic, sizeof png_magic)) {
#ifdef HAVE_PNG
		return png_decode(p, len, limit_of(max_pixels), out, err);
#else
		return mmf_err_set(err, -ENOTSUP, "image: PNG support was not built (configure found no libpng)");
#endif
	}
	char hex[16] = "";
	size_t at = 0;
	for (size_t i = 0; i < len && i < 4; i++)
		at += (size_t)snprintf(hex + at, sizeof hex - at, "%s%02x", i ? " " : "", p[i]);
	return mmf_err_set(err, -EINVAL, "image: not a JPEG or PNG (starts with %s)", hex);
}

int mmf_image_load(const char *path, int64_t max_pixels, mmf_image *out, mmf_err *err)
{
	int rc;
	uint8_t *buf = NULL;
	if (out)
		memset(out, 0, sizeof *out);
	FILE *f = fopen(path, "rb");
	if (!f)
		return mmf_err_set(err, -errno, "%s: cannot open: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) < 0) {
		rc = mmf_err_set(err, -errno, "%s: cannot stat: %s", path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = mmf_err_set(err, -EINVAL, "%s: not a regular file", path);
		goto done;
	}
	size_t n = (size_t)st.st_size;
	buf = malloc(n ? n : 1);
	if (!buf) {
		rc = mmf_err_set(err, -ENOMEM, "%s: cannot allocate %zu bytes to read it", path, n);
		goto done;
	}
	if (fread(buf, 1, n, f) != n) {
		rc = mmf_err_set(err, ferror(f) ? -EIO : -EINVAL, "%s: read fewer than its %zu bytes", path, n);
		goto done;
	}
	rc = mmf_image_decode(buf, n, max_pixels, out, err);
	if (rc < 0)
		mmf_err_prefix(err, "%s", path);
done:
	free(buf);
	fclose(f);
	return rc;
}

void mmf_image_free(mmf_image *im)
{
	if (!im)
		return;
	free(im->rgb);
	memset(im, 0, sizeof *im);
}

/* ------------------------------------------------------------------ preprocessing
 *
 * PIL's antialiased bicubic resize, 8-bit path, rebuilt from its algorithm:
 * separable, the horizontal pass first (over only the source rows the
 * vertical pass will read), each output sample a weighted sum of a window
 * of inputs. For a downscale by f the cubic kernel (a = -0.5) is stretched
 * by f, so every input pixel contributes (the antialiasing); for an
 * upscale it is the plain cubic. Weights are computed in double,
 * normalised to sum 1, then turned into 22-bit fixed point; sums start at
 * half a unit and the result is cut to 0..255 after each pass. An axis
 * whose size does not change gets no pass. Every rounding step above is
 * PIL's, which is what makes the result bit-exact.
 *
 * Only the s x s window the centre crop keeps is computed: each output
 * pixel depends on its own weights alone, so this changes no value and
 * saves the columns and rows the crop throws away. */

#define RS_BITS 22	/* PIL: 32 - 8 bits of result - 2 bits of headroom for negative lobes */

static double cubic(double x)
{
	const double a = -0.5;
	if (x < 0.0)
		x = -x;
	if (x < 1.0)
		return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
	if (x < 2.0)
		return (((x - 5) * x + 8) * x - 4) * a;
	return 0.0;
}

/* Fixed-point weights of outputs [o0, o0 + n) of an in_size -> out_size
 * resize: output i reads inputs first[i] .. first[i] + count[i] - 1 with
 * weights w[i * stride ...]. */
struct taps {
	int stride;
	int *first, *count;
	int32_t *w;
	double *tmp;
};

static void taps_free(struct taps *t)
{
	free(t->first);
	free(t->count);
	free(t->w);
	free(t->tmp);
	memset(t, 0, sizeof *t);
}

static int taps_new(int in_size, int out_size, int o0, int n, struct taps *t, mmf_err *err)
{
	memset(t, 0, sizeof *t);
	/* PIL takes the box edges as float: in_size goes through float too. */
	double scale = (double)(float)in_size / out_size;
	double fscale = scale < 1.0 ? 1.0 : scale;
	double support = 2.0 * fscale;
	double ksize = ceil(support) * 2 + 1;
	/* No window holds more than in_size inputs; PIL's buffer stride
	 * (ksize) is only a layout choice. */
	t->stride = ksize < in_size ? (int)ksize : in_size;
	size_t nw = (size_t)n * (size_t)t->stride;
	t->first = malloc((size_t)n * sizeof *t->first);
	t->count = malloc((size_t)n * sizeof *t->count);
	t->w = malloc(nw * sizeof *t->w);
	t->tmp = malloc((size_t)t->stride * sizeof *t->tmp);
	if (!t->first || !t->count || !t->w || !t->tmp) {
		taps_free(t);
		return mmf_err_set(err, -ENOMEM, "image: cannot allocate %zu resize weights (%d -> %d)", nw, in_size,
				   out_size);
	}
	double ss = 1.0 / fscale;
	for (int i = 0; i < n; i++) {
		double center = (o0 + i + 0.5) * scale;
		int lo = (int)(center - support + 0.5);
		int hi = (int)(center + support + 0.5);
		if (lo < 0)
			lo = 0;
		if (hi > in_size)
			hi = in_size;
		int cnt = hi - lo;
		if (cnt > t->stride)
			cnt = t->stride;	/* cannot happen; keeps the writes in bounds */
		if (cnt < 0)
			cnt = 0;
		double sum = 0.0;
		for (int k = 0; k < cnt; k++) {
			/* Same operation order as PIL: int position, minus centre, plus 0.5. */
			double wk = cubic(((double)(k + lo) - center + 0.5) * ss);
			t->tmp[k] = wk;
			sum += wk;
		}
		int32_t *wi = t->w + (size_t)i * (size_t)t->stride;
		for (int k = 0; k < cnt; k++) {
			double v = sum != 0.0 ? t->tmp[k] / sum : t->tmp[k];
			wi[k] = (int32_t)(v < 0 ? -0.5 + v * (1 << RS_BITS) : 0.5 + v * (1 << RS_BITS));
		}
		t->first[i] = lo;
		t->count[i] = cnt;
	}
	return 0;
}

/* The sums stay far inside int32: the weights' positive part adds up to
 * at most about 1.3, times 255, times 2^22 is under 2^31. */
static inline uint8_t clip_fixed(int32_t v)
{
	if (v < 0)
		return 0;
	v >>= RS_BITS;
	return v > 255 ? 255 : (uint8_t)v;
}

/* rows of src (RGB, src_w wide) -> rows of dst (RGB, t's n outputs wide).
 * Two rows at a time share each weight load and give the CPU six
 * independent sums; integer sums are exact, so the grouping changes no
 * result. This pass is most of the preprocessing time of a large photo. */
static void pass_h(const uint8_t *src, int src_w, int rows, const struct taps *t, int n, uint8_t *dst)
{
	size_t ss = (size_t)src_w * 3, ds = (size_t)n * 3;
	int y = 0;
	for (; y + 1 < rows; y += 2) {
		const uint8_t *s0 = src + (size_t)y * ss, *s1 = s0 + ss;
		uint8_t *d0 = dst + (size_t)y * ds, *d1 = d0 + ds;
		for (int i = 0; i < n; i++) {
			const int32_t *w = t->w + (size_t)i * (size_t)t->stride;
			const uint8_t *p = s0 + (size_t)t->first[i] * 3, *q = s1 + (size_t)t->first[i] * 3;
			int32_t r0 = 1 << (RS_BITS - 1), g0 = r0, b0 = r0, r1 = r0, g1 = r0, b1 = r0;
			for (int k = 0; k < t->count[i]; k++) {
				int32_t wk = w[k];
				r0 += p[3 * k + 0] * wk;
				g0 += p[3 * k + 1] * wk;
				b0 += p[3 * k + 2] * wk;
				r1 += q[3 * k + 0] * wk;
				g1 += q[3 * k + 1] * wk;
				b1 += q[3 * k + 2] * wk;
			}
			d0[3 * i + 0] = clip_fixed(r0);
			d0[3 * i + 1] = clip_fixed(g0);
			d0[3 * i + 2] = clip_fixed(b0);
			d1[3 * i + 0] = clip_fixed(r1);
			d1[3 * i + 1] = clip_fixed(g1);
			d1[3 * i + 2] = clip_fixed(b1);
		}
	}
	for (; y < rows; y++) {
		const uint8_t *s0 = src + (size_t)y * ss;
		uint8_t *d0 = dst + (size_t)y * ds;
		for (int i = 0; i < n; i++) {
			const int32_t *w = t->w + (size_t)i * (size_t)t->stride;
			const uint8_t *p = s0 + (size_t)t->first[i] * 3;
			int32_t r = 1 << (RS_BITS - 1), g = r, b = r;
			for (int k = 0; k < t->count[i]; k++) {
				r += p[3 * k + 0] * w[k];
				g += p[3 * k + 1] * w[k];
				b += p[3 * k + 2] * w[k];
			}
			d0[3 * i + 0] = clip_fixed(r);
			d0[3 * i + 1] = clip_fixed(g);
			d0[3 * i + 2] = clip_fixed(b);
		}
	}
}

/* src rows (RGB, width wide, row r at src + r * width * 3, r counted from
 * row0 of the source) -> n output rows. Row by row into a line of sums,
 * so the inner loop runs along contiguous bytes. acc: width * 3 sums. */
static void pass_v(const uint8_t *src, int width, int row0, const struct taps *t, int n, uint8_t *dst, int32_t *acc)
{
	size_t stride = (size_t)width * 3;
	for (int i = 0; i < n; i++) {
		const int32_t *w = t->w + (size_t)i * (size_t)t->stride;
		const uint8_t *base = src + (size_t)(t->first[i] - row0) * stride;
		uint8_t *d = dst + (size_t)i * stride;
		for (size_t x = 0; x < stride; x++)
			acc[x] = 1 << (RS_BITS - 1);
		for (int k = 0; k < t->count[i]; k++) {
			const uint8_t *row = base + (size_t)k * stride;
			int32_t wk = w[k];
			for (size_t x = 0; x < stride; x++)
				acc[x] += row[x] * wk;
		}
		for (size_t x = 0; x < stride; x++)
			d[x] = clip_fixed(acc[x]);
	}
}

/* torchvision's CenterCrop offset: int(round(d / 2.0)), and Python rounds
 * halves to even. */
static int crop_offset(int d)
{
	int k = d / 2;
	return (d % 2 == 0 || k % 2 == 0) ? k : k + 1;
}

int mmf_image_preprocess(const uint8_t *rgb, int w, int h, int s, float *out, mmf_err *err)
{
	/* CLIP's statistics, rounded to float as torch.as_tensor(list, float32)
	 * does: decimal -> double -> float. */
	static const double mean_d[3] = {0.48145466, 0.4578275, 0.40821073};
	static const double std_d[3] = {0.26862954, 0.26130258, 0.27577711};
	if (!rgb || !out)
		return mmf_err_set(err, -EINVAL, "image: preprocess needs pixels and an output buffer");
	if (w <= 0 || h <= 0 || s <= 0)
		return mmf_err_set(err, -EINVAL, "image: preprocess of a %d x %d image to %d x %d, expected positive sizes",
				   w, h, s, s);
	/* torchvision: the shorter side becomes s, the longer
	 * int(s * long / short) (Python's exact int product, then one
	 * correctly rounded division, which double reproduces below 2^53). */
	int sh = w <= h ? w : h, lg = w <= h ? h : w;
	double nl = (double)s * lg / sh;
	if (nl > INT_MAX)
		return mmf_err_set(err, -EINVAL, "image: resizing %d x %d so its shorter side is %d makes the longer %.0f, "
				   "expected at most %d", w, h, s, nl, INT_MAX);
	int rw = w <= h ? s : (int)nl, rh = w <= h ? (int)nl : s;
	int top = crop_offset(rh - s), left = crop_offset(rw - s);

	int rc = 0;
	struct taps th = {0}, tv = {0};
	uint8_t *tmp = NULL, *crop = NULL;
	int32_t *acc = NULL;
	const uint8_t *pix;	/* the s x s crop, RGB */
	int need_h = rw != w, need_v = rh != h;
	if (!need_h && !need_v) {
		/* torchvision returns the image untouched when the size is right */
		crop = malloc((size_t)s * (size_t)s * 3);
		if (!crop)
			goto nomem;
		for (int y = 0; y < s; y++)
			memcpy(crop + (size_t)y * (size_t)s * 3, rgb + ((size_t)(y + top) * (size_t)w + (size_t)left) * 3,
			       (size_t)s * 3);
		pix = crop;
	} else {
		/* Source rows the vertical pass reads (all crop rows when it is skipped). */
		int y0 = top, y1 = top + s;
		if (need_v) {
			rc = taps_new(h, rh, top, s, &tv, err);
			if (rc < 0)
				goto done;
			/* Windows only move forward, so the first and last bound them all. */
			y0 = tv.first[0];
			y1 = tv.first[s - 1] + tv.count[s - 1];
		}
		/* After the horizontal pass (or without it, the source's crop
		 * columns): rows y0..y1-1, s columns wide. */
		const uint8_t *mid;
		int mid_w;
		if (need_h) {
			rc = taps_new(w, rw, left, s, &th, err);
			if (rc < 0)
				goto done;
			tmp = malloc((size_t)(y1 - y0) * (size_t)s * 3);
			if (!tmp)
				goto nomem;
			pass_h(rgb + (size_t)y0 * (size_t)w * 3, w, y1 - y0, &th, s, tmp);
			mid = tmp;
			mid_w = s;
		} else {
			mid = rgb + (size_t)y0 * (size_t)w * 3 + (size_t)left * 3;
			mid_w = w;
		}
		crop = malloc((size_t)s * (size_t)s * 3);
		if (!crop)
			goto nomem;
		if (need_v) {
			acc = malloc((size_t)s * 3 * sizeof *acc);
			if (!acc)
				goto nomem;
			if (mid_w == s) {
				pass_v(mid, s, y0, &tv, s, crop, acc);
			} else {
				/* Unresized columns: gather the crop's columns first. */
				uint8_t *cols = malloc((size_t)(y1 - y0) * (size_t)s * 3);
				if (!cols)
					goto nomem;
				for (int y = 0; y < y1 - y0; y++)
					memcpy(cols + (size_t)y * (size_t)s * 3, mid + (size_t)y * (size_t)mid_w * 3,
					       (size_t)s * 3);
				pass_v(cols, s, y0, &tv, s, crop, acc);
				free(cols);
			}
		} else {
			for (int y = 0; y < s; y++)
				memcpy(crop + (size_t)y * (size_t)s * 3, mid + (size_t)y * (size_t)mid_w * 3,
				       (size_t)s * 3);
		}
		pix = crop;
	}

	/* ToTensor then Normalize, in float32 and in torch's order:
	 * (v / 255 - mean) / std. A table per channel gives the same bits. */
	float lut[3][256];
	for (int c = 0; c < 3; c++) {
		float m = (float)mean_d[c], sd = (float)std_d[c];
		for (int v = 0; v < 256; v++)
			lut[c][v] = ((float)v / 255.0f - m) / sd;
	}
	size_t plane = (size_t)s * (size_t)s;
	for (size_t i = 0; i < plane; i++) {
		out[i] = lut[0][pix[3 * i + 0]];
		out[plane + i] = lut[1][pix[3 * i + 1]];
		out[2 * plane + i] = lut[2][pix[3 * i + 2]];
	}
	goto done;
nomem:
	rc = mmf_err_set(err, -ENOMEM, "image: cannot allocate buffers to preprocess %d x %d to %d", w, h, s);
done:
	taps_free(&th);
	taps_free(&tv);
	free(tmp);
	free(crop);
	free(acc);
	return rc;
}
