/* Internal to the loaxa_fp library: little-endian helpers and per-type payload (un)packing. */
#ifndef LFP_PAYLOAD_H
#define LFP_PAYLOAD_H

#include "loaxa_fp.h"

static inline void lfp_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline uint16_t lfp_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | ((uint16_t)p[1] << 8));
}

/* Writes the payload of frame->type at out (room for LFP_MAX_PAYLOAD bytes).
 * Returns its length or LFP_ERR_RANGE. */
int lfp_payload_pack(const lfp_frame_t *frame, uint8_t *out);

/* Fills out->msg from a payload of out->type. Returns LFP_OK or LFP_ERR_PAYLOAD. */
int lfp_payload_unpack(const uint8_t *p, size_t len, lfp_frame_t *out);

#endif /* LFP_PAYLOAD_H */
