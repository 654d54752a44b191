/* loaxa controller protocol v1: CRC, COBS, frame encoder and stream decoder. See loaxa_fp.h. */
#include "loaxa_fp.h"

#include <string.h>

#include "lfp_payload.h"

uint16_t lfp_crc16(uint16_t crc, const uint8_t *data, size_t len)
{
    /* Table-less: ~8 shifts per byte, no 512-byte table in flash. */
    size_t i;
    int bit;
    for (i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

int lfp_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    /* Cheshire & Baker COBS: a 254-byte run ends a block (code 0xFF) without an implied zero,
     * and nothing is appended after a final full block - the same bytes as Python `cobs`. */
    size_t code_pos = 0, o = 1, i;
    uint8_t code = 1;
    if ((in == NULL && len > 0) || out == NULL) {
        return LFP_ERR_ARG;
    }
    if (cap < 1) {
        return LFP_ERR_BUFFER;
    }
    for (i = 0; i < len; i++) {
        if (in[i] == 0) {
            out[code_pos] = code;
            code_pos = o++;
            code = 1;
        } else {
            if (o >= cap) {
                return LFP_ERR_BUFFER;
            }
            out[o++] = in[i];
            code++;
            if (code == 0xFF && i + 1 < len) {
                out[code_pos] = code;
                code_pos = o++;
                code = 1;
            }
        }
        if (o > cap) {
            return LFP_ERR_BUFFER;
        }
    }
    out[code_pos] = code;
    return (int)o;
}

int lfp_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t i = 0, o = 0, n;
    uint8_t code;
    if ((in == NULL && len > 0) || out == NULL) {
        return LFP_ERR_ARG;
    }
    while (i < len) {
        code = in[i++];
        if (code == 0 || i + (size_t)(code - 1) > len) {
            return LFP_ERR_COBS; /* zero inside a run, or a code pointing past its end */
        }
        for (n = 1; n < code; n++) {
            if (in[i] == 0) {
                return LFP_ERR_COBS;
            }
            if (o >= cap) {
                return LFP_ERR_BUFFER;
            }
            out[o++] = in[i++];
        }
        if (code != 0xFF && i < len) {
            if (o >= cap) {
                return LFP_ERR_BUFFER;
            }
            out[o++] = 0;
        }
    }
    return (int)o;
}

int lfp_encode_frame(const lfp_frame_t *frame, uint8_t *out, size_t cap)
{
    uint8_t body[LFP_MAX_BODY];
    int n, w;
    uint16_t crc;
    if (frame == NULL || out == NULL) {
        return LFP_ERR_ARG;
    }
    if (frame->flags & ~LFP_FLAGS_DEFINED) {
        return LFP_ERR_RANGE; /* reserved flag bits must be 0 */
    }
    n = lfp_payload_pack(frame, body + LFP_HEADER_LEN);
    if (n < 0) {
        return n;
    }
    body[0] = LFP_VERSION;
    lfp_put_u16(body + 1, frame->address);
    lfp_put_u16(body + 3, frame->seq);
    body[5] = frame->type;
    body[6] = frame->flags;
    n += (int)LFP_HEADER_LEN;
    crc = lfp_crc16(0xFFFFu, body, (size_t)n);
    lfp_put_u16(body + n, crc);
    n += 2;
    if (cap < 1) {
        return LFP_ERR_BUFFER;
    }
    w = lfp_cobs_encode(body, (size_t)n, out, cap - 1);
    if (w < 0) {
        return w;
    }
    out[w] = 0x00;
    return w + 1;
}

int lfp_parse_body(const uint8_t *body, size_t len, lfp_frame_t *out)
{
    uint16_t crc;
    if (body == NULL || out == NULL) {
        return LFP_ERR_ARG;
    }
    if (len > LFP_MAX_BODY) {
        return LFP_ERR_OVERSIZE;
    }
    if (len < LFP_MIN_BODY) {
        return LFP_ERR_LENGTH;
    }
    crc = lfp_get_u16(body + len - 2);
    if (lfp_crc16(0xFFFFu, body, len - 2) != crc) {
        return LFP_ERR_CRC;
    }
    out->address = lfp_get_u16(body + 1);
    out->seq = lfp_get_u16(body + 3);
    out->type = body[5];
    out->flags = body[6];
    if (body[0] != LFP_VERSION) {
        return LFP_ERR_VERSION; /* header kept: a version-1 peer may still be NACKed */
    }
    return lfp_payload_unpack(body + LFP_HEADER_LEN, len - LFP_MIN_BODY, out);
}

void lfp_decoder_init(lfp_decoder_t *dec)
{
    memset(dec, 0, sizeof *dec);
}

/* A run (delimiter excluded) has ended: un-stuff it in place and parse it. A run that yields
 * no frame is dropped whole: one error counter, and its bytes + delimiter in discarded_bytes. */
static int finish_run(lfp_decoder_t *dec, lfp_frame_t *out)
{
    uint32_t run = dec->run_len;
    int n, rc;
    dec->run_len = 0;
    if (run > LFP_MAX_ENCODED) {
        rc = LFP_ERR_OVERSIZE;
    } else {
        n = lfp_cobs_decode(dec->buf, run, dec->buf, sizeof dec->buf);
        rc = n < 0 ? LFP_ERR_COBS : lfp_parse_body(dec->buf, (size_t)n, out);
    }
    switch (rc) {
    case LFP_OK:
        dec->stats.frames++;
        if (!lfp_type_known(out->type)) {
            dec->stats.unknown_type++; /* still returned, so the owner can NACK it */
        }
        return 1;
    case LFP_ERR_OVERSIZE: dec->stats.oversize++; break;
    case LFP_ERR_COBS: dec->stats.cobs_errors++; break;
    case LFP_ERR_CRC: dec->stats.crc_errors++; break;
    case LFP_ERR_VERSION: dec->stats.bad_version++; break;
    default: dec->stats.bad_length++; break; /* LFP_ERR_LENGTH, LFP_ERR_PAYLOAD */
    }
    dec->stats.discarded_bytes += run + 1u;
    return rc;
}

int lfp_decoder_feed_byte(lfp_decoder_t *dec, uint8_t byte, lfp_frame_t *out)
{
    if (byte == 0x00) {
        if (dec->run_len == 0) {
            return 0; /* idle fill between frames */
        }
        return finish_run(dec, out);
    }
    /* Past 258 bytes no valid frame fits: keep counting (saturating) but stop storing. */
    if (dec->run_len < LFP_MAX_ENCODED) {
        dec->buf[dec->run_len] = byte;
    }
    if (dec->run_len < 0xFFFFFFFEul) {
        dec->run_len++;
    }
    return 0;
}

size_t lfp_decoder_feed(lfp_decoder_t *dec, const uint8_t *data, size_t len, lfp_frame_cb cb,
                        void *ctx)
{
    lfp_frame_t frame;
    size_t i, frames = 0;
    for (i = 0; i < len; i++) {
        if (lfp_decoder_feed_byte(dec, data[i], &frame) == 1) {
            frames++;
            if (cb != NULL) {
                cb(&frame, ctx);
            }
        }
    }
    return frames;
}
