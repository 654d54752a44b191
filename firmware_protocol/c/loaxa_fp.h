/*
 * loaxa controller protocol, version 1 - reference C99 codec for MCU firmware.
 *
 * Contract: firmware_protocol/SPEC.md (byte layout, ids FP-...). Behaviour is aligned with the
 * Python reference codec (firmware_protocol/) through the shared vectors in
 * firmware_protocol/vectors/ (valid.json, invalid.json) (tests/test_fp_c_codec.py).
 *
 * No malloc, no stdio, fixed buffers. One frame on the wire:
 *
 *   COBS( version:u8 | address:u16 | seq:u16 | type:u8 | flags:u8 | payload[n] | crc:u16 ) | 0x00
 *
 * little-endian, CRC-16/CCITT-FALSE over everything before the crc, 0 <= n <= 247.
 * The stream decoder resynchronises at every 0x00: a bad run costs at most that run.
 */
#ifndef LOAXA_FP_H
#define LOAXA_FP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LFP_VERSION 1u
#define LFP_HEADER_LEN 7u     /* version..flags */
#define LFP_MAX_PAYLOAD 247u
#define LFP_MIN_BODY 9u       /* header + crc */
#define LFP_MAX_BODY 256u
#define LFP_MAX_ENCODED 258u  /* COBS of LFP_MAX_BODY, without the delimiter */
#define LFP_MAX_FRAME 259u    /* LFP_MAX_ENCODED + 0x00 delimiter: size your TX buffer so */
#define LFP_MAX_CLUSTERS 16u

#define LFP_ADDR_MASTER 0x0000u
#define LFP_ADDR_BROADCAST 0xFFFFu

#define LFP_FLAG_ACK_REQUESTED 0x01u
#define LFP_FLAG_RESPONSE 0x02u
#define LFP_FLAGS_DEFINED (LFP_FLAG_ACK_REQUESTED | LFP_FLAG_RESPONSE)

/* "unknown" sentinels */
#define LFP_UNKNOWN_I16 (-32768)
#define LFP_UNKNOWN_U16 0xFFFFu
#define LFP_UNKNOWN_I8 (-128)

typedef enum {
    LFP_HELLO = 0x01,
    LFP_TELEMETRY = 0x02,
    LFP_EVENT = 0x03,
    LFP_PLAYBACK = 0x04,
    LFP_ACK = 0x05,
    LFP_NACK = 0x06,
    LFP_POLL = 0x10,
    LFP_TIME_SYNC = 0x11
} lfp_type_t;

/* Negative return codes of the encoder / body parser. */
typedef enum {
    LFP_OK = 0,
    LFP_ERR_ARG = -1,        /* NULL pointer */
    LFP_ERR_BUFFER = -2,     /* output buffer too small */
    LFP_ERR_RANGE = -3,      /* a field out of range (k > 16, unknown payload > 247,
                                reserved flag bits set) */
    LFP_ERR_COBS = -4,       /* run is not valid COBS */
    LFP_ERR_LENGTH = -5,     /* body shorter than 9 bytes */
    LFP_ERR_CRC = -6,
    LFP_ERR_VERSION = -7,
    LFP_ERR_OVERSIZE = -8,   /* body longer than LFP_MAX_BODY, or a run longer than 258 */
    LFP_ERR_PAYLOAD = -9     /* payload size wrong for its (known) type */
} lfp_err_t;

typedef struct {
    uint32_t device_id;
    uint8_t fw_major, fw_minor, fw_patch, hw_rev;
    uint16_t capabilities;
    uint8_t n_clusters;
    uint16_t max_proto;
} lfp_hello_t;

typedef struct {
    uint8_t id, kind, flags;
    int8_t rms; /* whole dBFS, -128 unknown */
} lfp_cluster_t;

typedef struct {
    uint32_t uptime_s;
    uint8_t amp_state;
    int16_t audio_rms, audio_peak; /* centi-dBFS */
    uint16_t mains;                /* deci-volts AC */
    uint16_t battery;              /* milli-volts */
    uint8_t power_flags;
    int16_t temperature;           /* centi-degC */
    uint16_t fm_forward, fm_reflected; /* deci-watts */
    uint8_t reserved;
    uint8_t n_clusters;            /* k, 0..16 */
    lfp_cluster_t clusters[LFP_MAX_CLUSTERS];
} lfp_telemetry_t;

typedef struct {
    uint8_t code, cluster;
    uint32_t uptime_s;
    int16_t value;
    uint8_t reserved;
} lfp_event_t;

typedef struct {
    uint8_t action, source, priority;
    uint16_t cluster_mask;
    uint32_t uptime_s;
    uint8_t reserved;
} lfp_playback_t;

typedef struct {
    uint16_t acked_seq;
    uint8_t acked_type;
} lfp_ack_t;

typedef struct {
    uint16_t nacked_seq;
    uint8_t nacked_type, reason;
} lfp_nack_t;

typedef struct {
    uint8_t requested_type;
} lfp_poll_t;

typedef struct {
    uint64_t unix_ms;
    int16_t tz_offset_min;
} lfp_time_sync_t;

/* A type this firmware does not know: the payload is kept raw. */
typedef struct {
    uint8_t len;
    uint8_t data[LFP_MAX_PAYLOAD];
} lfp_unknown_t;

typedef struct {
    uint16_t address;
    uint16_t seq;
    uint8_t type; /* lfp_type_t, or any other value for lfp_unknown_t */
    uint8_t flags;
    union {
        lfp_hello_t hello;
        lfp_telemetry_t telemetry;
        lfp_event_t event;
        lfp_playback_t playback;
        lfp_ack_t ack;
        lfp_nack_t nack;
        lfp_poll_t poll;
        lfp_time_sync_t time_sync;
        lfp_unknown_t unknown;
    } msg;
} lfp_frame_t;

/* The same counters, same meaning, as the Python DecoderStats. */
typedef struct {
    uint32_t frames, discarded_bytes, crc_errors, oversize;
    uint32_t bad_version, unknown_type, bad_length, cobs_errors;
} lfp_stats_t;

typedef struct {
    uint8_t buf[LFP_MAX_FRAME]; /* the current run, COBS-decoded in place when it ends */
    uint32_t run_len;           /* bytes since the last 0x00; only the first 258 are kept */
    lfp_stats_t stats;
} lfp_decoder_t;

typedef void (*lfp_frame_cb)(const lfp_frame_t *frame, void *ctx);

/* CRC-16/CCITT-FALSE; pass 0xFFFF as crc to start, chain calls to continue. */
uint16_t lfp_crc16(uint16_t crc, const uint8_t *data, size_t len);

/* COBS without the delimiter. Return the output length or LFP_ERR_*. In-place decode
 * (out == in) is allowed. */
int lfp_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);
int lfp_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/* 1 if this implementation knows the type (it is not decoded as lfp_unknown_t). */
int lfp_type_known(uint8_t type);

/* Payload size for a known type (TELEMETRY: for its n_clusters), -1 for an unknown type. */
int lfp_payload_len(const lfp_frame_t *frame);

/* Frame -> wire bytes (COBS + trailing 0x00) in out[cap]. Returns the length (<= 259) or
 * LFP_ERR_*. LFP_MAX_FRAME bytes always suffice. */
int lfp_encode_frame(const lfp_frame_t *frame, uint8_t *out, size_t cap);

/* One un-stuffed body (version..crc) -> frame. Returns LFP_OK or, checked in this order,
 * LFP_ERR_OVERSIZE, LFP_ERR_LENGTH, LFP_ERR_CRC, LFP_ERR_VERSION, LFP_ERR_PAYLOAD. An unknown
 * type is not an error: it fills msg.unknown. After LFP_ERR_VERSION or LFP_ERR_PAYLOAD the CRC
 * was good, so out->address/seq/type/flags are set: enough to send a NACK (reason 4 / 3). */
int lfp_parse_body(const uint8_t *body, size_t len, lfp_frame_t *out);

void lfp_decoder_init(lfp_decoder_t *dec);

/* Feed one received byte (call from the UART RX path or its ring buffer). Returns 1 when it
 * completed a valid frame, stored in *out; 0 when the frame is still incomplete (or idle);
 * a negative LFP_ERR_* when it ended a run that was dropped (and counted in dec->stats).
 * On LFP_ERR_VERSION / LFP_ERR_PAYLOAD, *out holds the frame's header (see lfp_parse_body). */
int lfp_decoder_feed_byte(lfp_decoder_t *dec, uint8_t byte, lfp_frame_t *out);

/* Feed a chunk; cb is called for every valid frame. Returns the number of frames. */
size_t lfp_decoder_feed(lfp_decoder_t *dec, const uint8_t *data, size_t len, lfp_frame_cb cb,
                        void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* LOAXA_FP_H */
