/* Per-type payload layouts of SPEC.md section 2 (all little-endian). */
#include <string.h>

#include "lfp_payload.h"

#define TELEMETRY_FIXED 22u
#define CLUSTER_LEN 4u

static void put_u32(uint8_t *p, uint32_t v)
{
    lfp_put_u16(p, (uint16_t)v);
    lfp_put_u16(p + 2, (uint16_t)(v >> 16));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)lfp_get_u16(p) | ((uint32_t)lfp_get_u16(p + 2) << 16);
}

/* Two's complement on the wire; the casts keep C99 free of implementation-defined shifts. */
static void put_i16(uint8_t *p, int16_t v) { lfp_put_u16(p, (uint16_t)v); }

static int16_t get_i16(const uint8_t *p)
{
    uint16_t u = lfp_get_u16(p);
    return (u & 0x8000u) ? (int16_t)(-(int32_t)(0x10000ul - u)) : (int16_t)u;
}

static int8_t get_i8(uint8_t u) { return (u & 0x80u) ? (int8_t)(-(int)(0x100u - u)) : (int8_t)u; }

int lfp_type_known(uint8_t type)
{
    switch (type) {
    case LFP_HELLO: case LFP_TELEMETRY: case LFP_EVENT: case LFP_PLAYBACK:
    case LFP_ACK: case LFP_NACK: case LFP_POLL: case LFP_TIME_SYNC:
        return 1;
    default:
        return 0;
    }
}

static int fixed_len(uint8_t type)
{
    switch (type) {
    case LFP_HELLO: return 13;
    case LFP_TELEMETRY: return (int)TELEMETRY_FIXED;
    case LFP_EVENT: return 9;
    case LFP_PLAYBACK: return 10;
    case LFP_ACK: return 3;
    case LFP_NACK: return 4;
    case LFP_POLL: return 1;
    case LFP_TIME_SYNC: return 10;
    default: return -1;
    }
}

int lfp_payload_len(const lfp_frame_t *f)
{
    int n = fixed_len(f->type);
    if (f->type == LFP_TELEMETRY) {
        n += (int)(CLUSTER_LEN * f->msg.telemetry.n_clusters);
    }
    return n;
}

static void pack_telemetry(const lfp_telemetry_t *t, uint8_t *p)
{
    unsigned i;
    put_u32(p, t->uptime_s);
    p[4] = t->amp_state;
    put_i16(p + 5, t->audio_rms);
    put_i16(p + 7, t->audio_peak);
    lfp_put_u16(p + 9, t->mains);
    lfp_put_u16(p + 11, t->battery);
    p[13] = t->power_flags;
    put_i16(p + 14, t->temperature);
    lfp_put_u16(p + 16, t->fm_forward);
    lfp_put_u16(p + 18, t->fm_reflected);
    p[20] = t->reserved;
    p[21] = t->n_clusters;
    for (i = 0; i < t->n_clusters; i++) {
        uint8_t *c = p + TELEMETRY_FIXED + CLUSTER_LEN * i;
        c[0] = t->clusters[i].id;
        c[1] = t->clusters[i].kind;
        c[2] = t->clusters[i].flags;
        c[3] = (uint8_t)t->clusters[i].rms;
    }
}

int lfp_payload_pack(const lfp_frame_t *f, uint8_t *p)
{
    const lfp_hello_t *h = &f->msg.hello;
    const lfp_event_t *e = &f->msg.event;
    const lfp_playback_t *b = &f->msg.playback;
    switch (f->type) {
    case LFP_HELLO:
        put_u32(p, h->device_id);
        p[4] = h->fw_major; p[5] = h->fw_minor; p[6] = h->fw_patch; p[7] = h->hw_rev;
        lfp_put_u16(p + 8, h->capabilities);
        p[10] = h->n_clusters;
        lfp_put_u16(p + 11, h->max_proto);
        break;
    case LFP_TELEMETRY:
        if (f->msg.telemetry.n_clusters > LFP_MAX_CLUSTERS) {
            return LFP_ERR_RANGE;
        }
        pack_telemetry(&f->msg.telemetry, p);
        break;
    case LFP_EVENT:
        p[0] = e->code; p[1] = e->cluster;
        put_u32(p + 2, e->uptime_s);
        put_i16(p + 6, e->value);
        p[8] = e->reserved;
        break;
    case LFP_PLAYBACK:
        p[0] = b->action; p[1] = b->source; p[2] = b->priority;
        lfp_put_u16(p + 3, b->cluster_mask);
        put_u32(p + 5, b->uptime_s);
        p[9] = b->reserved;
        break;
    case LFP_ACK:
        lfp_put_u16(p, f->msg.ack.acked_seq);
        p[2] = f->msg.ack.acked_type;
        break;
    case LFP_NACK:
        lfp_put_u16(p, f->msg.nack.nacked_seq);
        p[2] = f->msg.nack.nacked_type;
        p[3] = f->msg.nack.reason;
        break;
    case LFP_POLL:
        p[0] = f->msg.poll.requested_type;
        break;
    case LFP_TIME_SYNC:
        put_u32(p, (uint32_t)f->msg.time_sync.unix_ms);
        put_u32(p + 4, (uint32_t)(f->msg.time_sync.unix_ms >> 32));
        put_i16(p + 8, f->msg.time_sync.tz_offset_min);
        break;
    default:
        if (f->msg.unknown.len > LFP_MAX_PAYLOAD) {
            return LFP_ERR_RANGE;
        }
        memcpy(p, f->msg.unknown.data, f->msg.unknown.len);
        return f->msg.unknown.len;
    }
    return lfp_payload_len(f);
}

static void unpack_telemetry(const uint8_t *p, lfp_telemetry_t *t)
{
    unsigned i;
    t->uptime_s = get_u32(p);
    t->amp_state = p[4];
    t->audio_rms = get_i16(p + 5);
    t->audio_peak = get_i16(p + 7);
    t->mains = lfp_get_u16(p + 9);
    t->battery = lfp_get_u16(p + 11);
    t->power_flags = p[13];
    t->temperature = get_i16(p + 14);
    t->fm_forward = lfp_get_u16(p + 16);
    t->fm_reflected = lfp_get_u16(p + 18);
    t->reserved = p[20];
    t->n_clusters = p[21];
    for (i = 0; i < t->n_clusters; i++) {
        const uint8_t *c = p + TELEMETRY_FIXED + CLUSTER_LEN * i;
        t->clusters[i].id = c[0];
        t->clusters[i].kind = c[1];
        t->clusters[i].flags = c[2];
        t->clusters[i].rms = get_i8(c[3]);
    }
}

/* The payload size must match the type exactly (TELEMETRY: 22 + 4k, k <= 16). */
static int length_ok(const uint8_t *p, size_t len, uint8_t type)
{
    if (type == LFP_TELEMETRY) {
        return len >= TELEMETRY_FIXED && p[21] <= LFP_MAX_CLUSTERS
               && len == TELEMETRY_FIXED + CLUSTER_LEN * p[21];
    }
    return len == (size_t)fixed_len(type);
}

int lfp_payload_unpack(const uint8_t *p, size_t len, lfp_frame_t *f)
{
    lfp_hello_t *h = &f->msg.hello;
    lfp_event_t *e = &f->msg.event;
    lfp_playback_t *b = &f->msg.playback;
    if (!lfp_type_known(f->type)) {
        f->msg.unknown.len = (uint8_t)len; /* len <= 247: the body is at most 256 bytes */
        memcpy(f->msg.unknown.data, p, len);
        return LFP_OK;
    }
    if (!length_ok(p, len, f->type)) {
        return LFP_ERR_PAYLOAD;
    }
    switch (f->type) {
    case LFP_HELLO:
        h->device_id = get_u32(p);
        h->fw_major = p[4]; h->fw_minor = p[5]; h->fw_patch = p[6]; h->hw_rev = p[7];
        h->capabilities = lfp_get_u16(p + 8);
        h->n_clusters = p[10];
        h->max_proto = lfp_get_u16(p + 11);
        break;
    case LFP_TELEMETRY:
        unpack_telemetry(p, &f->msg.telemetry);
        break;
    case LFP_EVENT:
        e->code = p[0]; e->cluster = p[1];
        e->uptime_s = get_u32(p + 2);
        e->value = get_i16(p + 6);
        e->reserved = p[8];
        break;
    case LFP_PLAYBACK:
        b->action = p[0]; b->source = p[1]; b->priority = p[2];
        b->cluster_mask = lfp_get_u16(p + 3);
        b->uptime_s = get_u32(p + 5);
        b->reserved = p[9];
        break;
    case LFP_ACK:
        f->msg.ack.acked_seq = lfp_get_u16(p);
        f->msg.ack.acked_type = p[2];
        break;
    case LFP_NACK:
        f->msg.nack.nacked_seq = lfp_get_u16(p);
        f->msg.nack.nacked_type = p[2];
        f->msg.nack.reason = p[3];
        break;
    case LFP_POLL:
        f->msg.poll.requested_type = p[0];
        break;
    default: /* LFP_TIME_SYNC */
        f->msg.time_sync.unix_ms = (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32);
        f->msg.time_sync.tz_offset_min = get_i16(p + 8);
        break;
    }
    return LFP_OK;
}
