/*
 * Example: the controller side of the poll/response loop, as MCU firmware would write it.
 * Compiled (not run) by `make` so it stays in step with the API; README.md walks through it.
 * The board support package provides the extern functions below.
 */
#include "loaxa_fp.h"

#define MY_ADDRESS 0x0012u

/* --- board support package (not part of the library) --- */
extern int uart_read_byte(uint8_t *byte); /* 1 if a byte was waiting in the RX ring */
extern void uart_write(const uint8_t *data, size_t len);
extern void read_hello(lfp_hello_t *hello);
extern void read_telemetry(lfp_telemetry_t *telemetry);
extern void set_rtc(uint64_t unix_ms, int16_t tz_offset_min);

static lfp_decoder_t rx;  /* 259-byte buffer + counters: static, never on the stack */
static lfp_frame_t req;   /* the frame being answered */
static lfp_frame_t reply; /* static too: an lfp_frame_t is 256 bytes */
static uint16_t tx_seq;   /* FP-SEQ-1: starts at 0 after power-up */

/* FP-SEQ-3: the master's last (seq, type) and our answer to it, resent as-is on a retry. */
static uint8_t last_answer[LFP_MAX_FRAME];
static int last_answer_len = -1;
static uint16_t last_seq;
static uint8_t last_type;

static void send(uint8_t type, uint8_t flags)
{
    int n;
    reply.address = MY_ADDRESS; /* a controller always sends its own address */
    reply.seq = tx_seq++;       /* an answer is a new frame with its own seq (FP-SEQ-2) */
    reply.type = type;
    reply.flags = flags;
    n = lfp_encode_frame(&reply, last_answer, sizeof last_answer);
    if (n > 0) {
        last_answer_len = n;
        last_seq = req.seq;
        last_type = req.type;
        uart_write(last_answer, (size_t)n);
    }
}

static void nack(uint8_t reason)
{
    reply.msg.nack.nacked_seq = req.seq;
    reply.msg.nack.nacked_type = req.type;
    reply.msg.nack.reason = reason; /* 1 crc, 2 unknown type, 3 bad length, 4 version, 6 value */
    send(LFP_NACK, 0);
}

static void answer(void)
{
    if (last_answer_len > 0 && req.seq == last_seq && req.type == last_type) {
        uart_write(last_answer, (size_t)last_answer_len); /* a retry: same answer, no re-run */
        return;
    }
    switch (req.type) {
    case LFP_POLL:
        if (req.msg.poll.requested_type == LFP_HELLO) {
            read_hello(&reply.msg.hello);
            send(LFP_HELLO, LFP_FLAG_RESPONSE);
        } else if (req.msg.poll.requested_type == LFP_TELEMETRY) {
            read_telemetry(&reply.msg.telemetry);
            send(LFP_TELEMETRY, LFP_FLAG_RESPONSE);
        } else {
            nack(6);
        }
        break;
    case LFP_TIME_SYNC:
        set_rtc(req.msg.time_sync.unix_ms, req.msg.time_sync.tz_offset_min);
        reply.msg.ack.acked_seq = req.seq;
        reply.msg.ack.acked_type = req.type;
        send(LFP_ACK, 0);
        break;
    case LFP_ACK:
    case LFP_NACK:
        break; /* answers to our own ACK_REQUESTED frames: clear the retry timer here */
    case LFP_HELLO:
    case LFP_TELEMETRY:
    case LFP_EVENT:
    case LFP_PLAYBACK:
        break; /* controller -> agent types: our own echo on a half-duplex RS-485 line */
    default:
        nack(2); /* a type this firmware does not know (decoded as msg.unknown) */
        break;
    }
}

/* Call from the main loop (or an RX-idle interrupt): drains the UART, answers in < 100 ms. */
void protocol_poll(void)
{
    uint8_t byte;
    int rc;
    while (uart_read_byte(&byte)) {
        rc = lfp_decoder_feed_byte(&rx, byte, &req);
        if (rc != 1 && rc != LFP_ERR_PAYLOAD && rc != LFP_ERR_VERSION) {
            continue; /* no frame yet, or a dropped run without a trustworthy header */
        }
        if (rc == 1 && req.address == LFP_ADDR_BROADCAST && req.type == LFP_TIME_SYNC) {
            set_rtc(req.msg.time_sync.unix_ms, req.msg.time_sync.tz_offset_min);
            continue; /* broadcasts are never answered: every controller would talk at once */
        }
        if (req.address != MY_ADDRESS) {
            continue; /* for another controller */
        }
        if (rc == 1) {
            answer();
        } else {
            nack(rc == LFP_ERR_PAYLOAD ? 3 : 4);
        }
    }
}

void protocol_init(void)
{
    lfp_decoder_init(&rx);
}
