//! Per-packet rules for forwarding, kept free of any WebRTC type so they are tested on
//! their own.
//!
//! A receive slot is one outgoing RTP stream with the relay's SSRC. Its source can change
//! (someone leaves, someone else takes the slot, or a member rejoins with a new
//! connection), and the receiver must still see one continuous stream: sequence numbers
//! and timestamps are shifted so they carry on from where the previous source stopped.

/// Continuity of one outgoing stream across changes of source.
#[derive(Clone, Debug, Default)]
pub struct StreamRewriter {
    source: Option<u64>,
    seq_delta: u16,
    ts_delta: u32,
    /// The newest sequence number and timestamp sent, once anything was.
    last: Option<(u16, u32)>,
}

impl StreamRewriter {
    /// The sequence number and timestamp to send for a packet from `source` (any number
    /// that changes when the publishing stream changes). `ts_gap` is the timestamp step
    /// inserted at a change of source (a frame's worth at the codec's clock).
    pub fn rewrite(&mut self, source: u64, seq: u16, ts: u32, ts_gap: u32) -> (u16, u32) {
        if self.source != Some(source) {
            self.source = Some(source);
            match self.last {
                Some((last_seq, last_ts)) => {
                    self.seq_delta = last_seq.wrapping_add(1).wrapping_sub(seq);
                    self.ts_delta = last_ts.wrapping_add(ts_gap).wrapping_sub(ts);
                }
                None => {
                    self.seq_delta = 0;
                    self.ts_delta = 0;
                }
            }
        }
        let out = (
            seq.wrapping_add(self.seq_delta),
            ts.wrapping_add(self.ts_delta),
        );
        // Remember the newest, not the latest: reordered packets must not pull it back.
        let newer = match self.last {
            None => true,
            Some((last_seq, _)) => seq_newer(out.0, last_seq),
        };
        if newer {
            self.last = Some(out);
        }
        out
    }
}

/// RFC 1982 serial-number comparison for 16-bit sequence numbers.
fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// When to ask a publisher for a key frame. The relay terminates its receivers' own
/// requests (a receiver without the key asks several times a second, which would force
/// the sender into constant key frames); instead it asks when a receiver has just
/// connected or the keys have just changed, and now and then to heal a lost frame.
#[derive(Clone, Debug)]
pub struct KeyframePlan {
    /// Instants (ms on the caller's clock) at which to ask.
    due: Vec<u64>,
    next_periodic: u64,
}

/// After a change, ask at these offsets (ms): once at once, then twice more to cover a
/// receiver whose transport or new key is a moment late.
pub const KEYFRAME_BURST_MS: [u64; 3] = [300, 1000, 2500];
/// Ask this often (ms) regardless.
pub const KEYFRAME_PERIOD_MS: u64 = 5000;

impl KeyframePlan {
    /// A plan starting at `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        KeyframePlan {
            due: Vec::new(),
            next_periodic: now_ms + KEYFRAME_PERIOD_MS,
        }
    }

    /// Something changed (a receiver connected, someone joined or left).
    pub fn changed(&mut self, now_ms: u64) {
        self.due.retain(|t| *t > now_ms);
        for off in KEYFRAME_BURST_MS {
            self.due.push(now_ms + off);
        }
    }

    /// Whether to ask now; call often (every 100 ms or so).
    pub fn poll(&mut self, now_ms: u64) -> bool {
        let before = self.due.len();
        self.due.retain(|t| *t > now_ms);
        let burst = self.due.len() != before;
        let periodic = now_ms >= self.next_periodic;
        if periodic || burst {
            self.next_periodic = now_ms + KEYFRAME_PERIOD_MS;
        }
        periodic || burst
    }
}
