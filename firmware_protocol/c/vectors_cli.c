/*
 * Host test harness for the loaxa_fp library (tests/test_fp_c_codec.py drives it).
 * One command per stdin line, one answer per command:
 *
 *   E <type> <address> <seq> <flags> <field ints...>  ->  <wire hex incl. trailing 00>
 *                                                          or "ERR <reason>"
 *   D <hex>  ->  a fresh decoder is fed the bytes; one line per decoded frame
 *                "F <type> <address> <seq> <flags> <field ints...>", then
 *                "S <frames> <discarded_bytes> <crc_errors> <oversize> <bad_version>
 *                   <unknown_type> <bad_length> <cobs_errors>"
 *   P <hex>  ->  like D, but into one persistent decoder (frames split across P commands are
 *                reassembled); the S line is its cumulative stats
 *   L <cap> <type> ...  ->  as E, into an output buffer of exactly <cap> bytes
 *   R        ->  resets the persistent decoder; answers "OK"
 *   N <hex>  ->  a fresh decoder, byte by byte; per dropped run "X <lfp_err_t>" (followed by
 *                "<type> <address> <seq> <flags>" when the header is known: bad version or
 *                payload size, the frames a controller NACKs), F lines as D, then the S line
 *
 * Fields are flat, in SPEC table order: TELEMETRY is the fixed fields, k, then id kind flags rms
 * per cluster; unknown types are their payload bytes. Output is flushed after every command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaxa_fp.h"

#define MAX_TOKENS 300
#define MAX_LINE (1 << 18) /* a D/P command carries up to 128 KiB */

typedef struct {
    long long v[MAX_TOKENS];
    unsigned long long u[MAX_TOKENS]; /* the same token as unsigned, for u64 unix_ms */
    size_t n;
} ints_t;

/* Struct-module style layout codes: B u8, b i8, H u16, h i16, I u32, Q u64. */
static const char *layout(uint8_t type)
{
    switch (type) {
    case LFP_HELLO: return "IBBBBHBH";
    case LFP_TELEMETRY: return "IBhhHHBhHHBB";
    case LFP_EVENT: return "BBIhB";
    case LFP_PLAYBACK: return "BBBHIB";
    case LFP_ACK: return "HB";
    case LFP_NACK: return "HBB";
    case LFP_POLL: return "B";
    case LFP_TIME_SYNC: return "Qh";
    default: return NULL;
    }
}

static int fits(char code, long long v, unsigned long long u)
{
    switch (code) {
    case 'B': return v >= 0 && v <= 0xFF;
    case 'b': return v >= -128 && v <= 127;
    case 'H': return v >= 0 && v <= 0xFFFF;
    case 'h': return v >= -32768 && v <= 32767;
    case 'I': return v >= 0 && v <= 0xFFFFFFFFLL;
    default: return v >= 0 || u > 0x7FFFFFFFFFFFFFFFULL; /* Q: any non-negative 64-bit value */
    }
}

/* Checks count and ranges of the flat field list; returns NULL or a reason. */
static const char *check_fields(uint8_t type, const ints_t *f, size_t at)
{
    const char *lay = layout(type);
    size_t i, n = f->n - at, want;
    if (lay == NULL) {
        for (i = at; i < f->n; i++) {
            if (!fits('B', f->v[i], f->u[i])) return "range";
        }
        return n > 0xFF ? "range" : NULL; /* 248..255: left for the library to refuse */
    }
    want = strlen(lay);
    if (type == LFP_TELEMETRY && n >= want) {
        if (f->v[at + want - 1] < 0 || f->v[at + want - 1] > 0xFF) {
            return "range";
        }
        want += 4u * (size_t)f->v[at + want - 1];
    }
    if (n != want) return "field count";
    for (i = 0; i < n; i++) {
        char code = i < strlen(lay) ? lay[i] : "BBBb"[(i - strlen(lay)) % 4];
        if (!fits(code, f->v[at + i], f->u[at + i])) return "range";
    }
    return NULL;
}

static void fill_message(lfp_frame_t *fr, const long long *v, const unsigned long long *u, size_t n)
{
    size_t i;
    lfp_telemetry_t *t = &fr->msg.telemetry;
    switch (fr->type) {
    case LFP_HELLO: {
        lfp_hello_t h = {(uint32_t)v[0], (uint8_t)v[1], (uint8_t)v[2], (uint8_t)v[3],
                         (uint8_t)v[4], (uint16_t)v[5], (uint8_t)v[6], (uint16_t)v[7]};
        fr->msg.hello = h;
        break;
    }
    case LFP_TELEMETRY:
        t->uptime_s = (uint32_t)v[0]; t->amp_state = (uint8_t)v[1];
        t->audio_rms = (int16_t)v[2]; t->audio_peak = (int16_t)v[3];
        t->mains = (uint16_t)v[4]; t->battery = (uint16_t)v[5]; t->power_flags = (uint8_t)v[6];
        t->temperature = (int16_t)v[7]; t->fm_forward = (uint16_t)v[8];
        t->fm_reflected = (uint16_t)v[9]; t->reserved = (uint8_t)v[10];
        t->n_clusters = (uint8_t)v[11];
        for (i = 0; i < t->n_clusters && i < LFP_MAX_CLUSTERS; i++) { /* k > 16: lib refuses */
            const long long *c = v + 12 + 4 * i;
            lfp_cluster_t cl = {(uint8_t)c[0], (uint8_t)c[1], (uint8_t)c[2], (int8_t)c[3]};
            t->clusters[i] = cl;
        }
        break;
    case LFP_EVENT: {
        lfp_event_t e = {(uint8_t)v[0], (uint8_t)v[1], (uint32_t)v[2], (int16_t)v[3], (uint8_t)v[4]};
        fr->msg.event = e;
        break;
    }
    case LFP_PLAYBACK: {
        lfp_playback_t b = {(uint8_t)v[0], (uint8_t)v[1], (uint8_t)v[2], (uint16_t)v[3],
                            (uint32_t)v[4], (uint8_t)v[5]};
        fr->msg.playback = b;
        break;
    }
    case LFP_ACK: fr->msg.ack.acked_seq = (uint16_t)v[0]; fr->msg.ack.acked_type = (uint8_t)v[1];
        break;
    case LFP_NACK:
        fr->msg.nack.nacked_seq = (uint16_t)v[0]; fr->msg.nack.nacked_type = (uint8_t)v[1];
        fr->msg.nack.reason = (uint8_t)v[2];
        break;
    case LFP_POLL: fr->msg.poll.requested_type = (uint8_t)v[0]; break;
    case LFP_TIME_SYNC:
        fr->msg.time_sync.unix_ms = (uint64_t)u[0];
        fr->msg.time_sync.tz_offset_min = (int16_t)v[1];
        break;
    default:
        fr->msg.unknown.len = (uint8_t)n;
        for (i = 0; i < n; i++) fr->msg.unknown.data[i] = (uint8_t)v[i];
        break;
    }
}

static void print_message(const lfp_frame_t *fr)
{
    size_t i;
    const lfp_hello_t *h = &fr->msg.hello;
    const lfp_telemetry_t *t = &fr->msg.telemetry;
    const lfp_event_t *e = &fr->msg.event;
    const lfp_playback_t *b = &fr->msg.playback;
    printf("F %u %u %u %u", fr->type, fr->address, fr->seq, fr->flags);
    switch (fr->type) {
    case LFP_HELLO:
        printf(" %lu %u %u %u %u %u %u %u", (unsigned long)h->device_id, h->fw_major,
               h->fw_minor, h->fw_patch, h->hw_rev, h->capabilities, h->n_clusters, h->max_proto);
        break;
    case LFP_TELEMETRY:
        printf(" %lu %u %d %d %u %u %u %d %u %u %u %u", (unsigned long)t->uptime_s, t->amp_state,
               t->audio_rms, t->audio_peak, t->mains, t->battery, t->power_flags, t->temperature,
               t->fm_forward, t->fm_reflected, t->reserved, t->n_clusters);
        for (i = 0; i < t->n_clusters; i++) {
            printf(" %u %u %u %d", t->clusters[i].id, t->clusters[i].kind, t->clusters[i].flags,
                   t->clusters[i].rms);
        }
        break;
    case LFP_EVENT:
        printf(" %u %u %lu %d %u", e->code, e->cluster, (unsigned long)e->uptime_s, e->value,
               e->reserved);
        break;
    case LFP_PLAYBACK:
        printf(" %u %u %u %u %lu %u", b->action, b->source, b->priority, b->cluster_mask,
               (unsigned long)b->uptime_s, b->reserved);
        break;
    case LFP_ACK: printf(" %u %u", fr->msg.ack.acked_seq, fr->msg.ack.acked_type); break;
    case LFP_NACK:
        printf(" %u %u %u", fr->msg.nack.nacked_seq, fr->msg.nack.nacked_type,
               fr->msg.nack.reason);
        break;
    case LFP_POLL: printf(" %u", fr->msg.poll.requested_type); break;
    case LFP_TIME_SYNC:
        printf(" %llu %d", (unsigned long long)fr->msg.time_sync.unix_ms,
               fr->msg.time_sync.tz_offset_min);
        break;
    default:
        for (i = 0; i < fr->msg.unknown.len; i++) printf(" %u", fr->msg.unknown.data[i]);
        break;
    }
    printf("\n");
}

static int parse_ints(char *s, ints_t *out)
{
    char *tok, *end;
    out->n = 0;
    for (tok = strtok(s, " \t\r\n"); tok != NULL; tok = strtok(NULL, " \t\r\n")) {
        if (out->n == MAX_TOKENS) return -1;
        out->v[out->n] = strtoll(tok, &end, 10);
        if (*end != '\0') return -1;
        out->u[out->n] = tok[0] == '-' ? 0 : strtoull(tok, &end, 10);
        out->n++;
    }
    return 0;
}

/* E: into a LFP_MAX_FRAME buffer; L: into a heap buffer of exactly <cap> bytes, so that the
 * sanitizer build catches any write past what the caller said it has. */
static void cmd_encode(char *args, int with_cap)
{
    static ints_t f;
    lfp_frame_t fr;
    uint8_t *wire;
    const char *why;
    size_t at = with_cap ? 1u : 0u, cap = LFP_MAX_FRAME;
    int n, i;
    if (parse_ints(args, &f) < 0 || f.n < at + 4) { printf("ERR syntax\n"); return; }
    if (with_cap) {
        if (f.v[0] < 0 || f.v[0] > (long long)LFP_MAX_FRAME) { printf("ERR range\n"); return; }
        cap = (size_t)f.v[0];
    }
    if (!fits('B', f.v[at], 0) || !fits('H', f.v[at + 1], 0) || !fits('H', f.v[at + 2], 0)
        || !fits('B', f.v[at + 3], 0)) {
        printf("ERR range\n");
        return;
    }
    memset(&fr, 0, sizeof fr);
    fr.type = (uint8_t)f.v[at]; fr.address = (uint16_t)f.v[at + 1];
    fr.seq = (uint16_t)f.v[at + 2]; fr.flags = (uint8_t)f.v[at + 3];
    why = check_fields(fr.type, &f, at + 4);
    if (why != NULL) { printf("ERR %s\n", why); return; }
    fill_message(&fr, f.v + at + 4, f.u + at + 4, f.n - at - 4);
    wire = malloc(cap > 0 ? cap : 1u);
    if (wire == NULL) { printf("ERR memory\n"); return; }
    n = lfp_encode_frame(&fr, wire, cap);
    if (n < 0) {
        printf("ERR encode %d\n", n);
    } else {
        for (i = 0; i < n; i++) printf("%02x", wire[i]);
        printf("\n");
    }
    free(wire);
}

static void on_frame(const lfp_frame_t *frame, void *ctx)
{
    (void)ctx;
    print_message(frame);
}

static void print_stats(const lfp_stats_t *s)
{
    printf("S %lu %lu %lu %lu %lu %lu %lu %lu\n", (unsigned long)s->frames,
           (unsigned long)s->discarded_bytes, (unsigned long)s->crc_errors,
           (unsigned long)s->oversize, (unsigned long)s->bad_version,
           (unsigned long)s->unknown_type, (unsigned long)s->bad_length,
           (unsigned long)s->cobs_errors);
}

/* Hex -> bytes in the static buffer; returns the count or -1 on bad hex. */
static long parse_hex(const char *hex, const uint8_t **bytes_out)
{
    static uint8_t bytes[MAX_LINE / 2];
    long n = 0;
    unsigned byte;
    while (*hex == ' ') hex++;
    while (hex[0] != '\0' && hex[1] != '\0' && sscanf(hex, "%2x", &byte) == 1) {
        bytes[n++] = (uint8_t)byte;
        hex += 2;
    }
    *bytes_out = bytes;
    return *hex == '\0' ? n : -1;
}

/* Fed to dec with the chunk API; prints frames and stats. */
static void cmd_decode(lfp_decoder_t *dec, const char *hex)
{
    const uint8_t *bytes;
    long n = parse_hex(hex, &bytes);
    if (n < 0) { printf("ERR hex\n"); return; }
    lfp_decoder_feed(dec, bytes, (size_t)n, on_frame, NULL);
    print_stats(&dec->stats);
}

/* Fed byte by byte with the per-byte API; also reports each dropped run. */
static void cmd_rejects(const char *hex)
{
    static lfp_decoder_t dec;
    lfp_frame_t fr;
    const uint8_t *bytes;
    long i, n = parse_hex(hex, &bytes);
    int rc;
    if (n < 0) { printf("ERR hex\n"); return; }
    lfp_decoder_init(&dec);
    for (i = 0; i < n; i++) {
        rc = lfp_decoder_feed_byte(&dec, bytes[i], &fr);
        if (rc == 1) {
            print_message(&fr);
        } else if (rc == LFP_ERR_VERSION || rc == LFP_ERR_PAYLOAD) {
            printf("X %d %u %u %u %u\n", rc, fr.type, fr.address, fr.seq, fr.flags);
        } else if (rc < 0) {
            printf("X %d\n", rc);
        }
    }
    print_stats(&dec.stats);
}

int main(void)
{
    static char line[MAX_LINE];
    static lfp_decoder_t fresh, persistent; /* static: off the stack, like on an MCU */
    lfp_decoder_init(&persistent);
    while (fgets(line, sizeof line, stdin) != NULL) {
        if (strchr(line, '\n') == NULL && !feof(stdin)) {
            int c;
            while ((c = getchar()) != EOF && c != '\n') {
            }
            printf("ERR line too long\n");
            fflush(stdout);
            continue;
        }
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == 'E' && line[1] == ' ') {
            cmd_encode(line + 2, 0);
        } else if (line[0] == 'L' && line[1] == ' ') {
            cmd_encode(line + 2, 1);
        } else if (line[0] == 'D' && (line[1] == ' ' || line[1] == '\0')) {
            lfp_decoder_init(&fresh);
            cmd_decode(&fresh, line + 1);
        } else if (line[0] == 'P' && (line[1] == ' ' || line[1] == '\0')) {
            cmd_decode(&persistent, line + 1);
        } else if (line[0] == 'N' && (line[1] == ' ' || line[1] == '\0')) {
            cmd_rejects(line + 1);
        } else if (line[0] == 'R' && line[1] == '\0') {
            lfp_decoder_init(&persistent);
            printf("OK\n");
        } else if (line[0] != '\0') {
            printf("ERR command\n");
        }
        fflush(stdout);
    }
    return 0;
}
