//! The relay's NACK responder: what a leg keeps of the video it sends, to send it again
//! when the member's receiver reports a packet lost (RTCP generic NACK, RFC 4585).
//!
//! It takes the place of `rtc`'s own responder in the leg's interceptor chain (the same
//! slot, through `rtc`'s public `Interceptor` trait) for one reason: memory. `rtc`'s
//! responder allocates its ring for every outgoing video stream as soon as the stream is
//! bound, and a leg binds one per receive slot ([`CALL_SLOTS`]), whether or not anyone
//! ever publishes into it: in a two-member call, four of a leg's five rings stay empty
//! (≈ 7 KiB each at 64 packets, `docs/sfu-memory.md`). Here a stream's ring is
//! allocated when its first packet goes out. What it keeps and answers is the same: the
//! last `size` packets per stream, sent again unchanged (no RTX: the relay offers none),
//! marked as retransmissions for the rest of the chain.
//!
//! [`CALL_SLOTS`]: approdo_core::limits::CALL_SLOTS

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{
    Attribute, AttributedPacket, Interceptor, Packet, StreamInfo, TaggedPacket,
};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::TransportContext;
use rtc::shared::error::Error;

/// One outgoing stream that may be asked for retransmissions.
struct Stream {
    ssrc: u32,
    /// `ring[seq & mask]`; empty until the stream's first packet.
    ring: Vec<Option<rtc::rtp::Packet>>,
    /// The highest sequence number stored, once one is.
    newest: Option<u16>,
}

/// Keeps the last `size` packets of each outgoing stream that negotiated NACK, allocating
/// a stream's ring only when it first sends. See the module documentation.
pub struct Retransmitter {
    size: u16,
    streams: Vec<Stream>,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl Retransmitter {
    /// A responder keeping `size` packets per stream. `size` must be a power of two (the
    /// relay checks `sfu.retransmit_buffer` at start); anything else is rounded up to one.
    pub fn new(size: u16) -> Self {
        Retransmitter {
            size: size.max(1).checked_next_power_of_two().unwrap_or(1 << 15),
            streams: Vec::new(),
            reads: VecDeque::new(),
            writes: VecDeque::new(),
        }
    }

    fn mask(&self) -> u16 {
        self.size - 1
    }

    /// Remember `packet` if its stream is one of ours.
    fn store(&mut self, packet: &rtc::rtp::Packet) {
        let (size, mask) = (self.size, self.mask());
        let Some(stream) = self
            .streams
            .iter_mut()
            .find(|s| s.ssrc == packet.header.ssrc)
        else {
            return;
        };
        if stream.ring.is_empty() {
            stream.ring = (0..size).map(|_| None).collect();
        }
        let seq = packet.header.sequence_number;
        match stream.newest {
            None => stream.newest = Some(seq),
            Some(newest) => {
                let ahead = seq.wrapping_sub(newest);
                if ahead == 0 {
                    return;
                }
                if ahead < 0x8000 {
                    // Newer: the slots it jumped over hold packets too old to keep.
                    if ahead >= size {
                        stream.ring.iter_mut().for_each(|p| *p = None);
                    } else {
                        let mut s = newest.wrapping_add(1);
                        while s != seq {
                            stream.ring[usize::from(s & mask)] = None;
                            s = s.wrapping_add(1);
                        }
                    }
                    stream.newest = Some(seq);
                } else if newest.wrapping_sub(seq) >= size {
                    // Older than anything the ring still covers.
                    return;
                }
            }
        }
        stream.ring[usize::from(seq & mask)] = Some(packet.clone());
    }

    /// The stored packet `seq` of stream `ssrc`, if it is still kept.
    fn get(&self, ssrc: u32, seq: u16) -> Option<&rtc::rtp::Packet> {
        let stream = self.streams.iter().find(|s| s.ssrc == ssrc)?;
        let age = stream.newest?.wrapping_sub(seq);
        if age >= self.size {
            return None;
        }
        stream
            .ring
            .get(usize::from(seq & self.mask()))?
            .as_ref()
            .filter(|p| p.header.sequence_number == seq)
    }

    /// Queue, for sending, every packet `nack` asks for that is still kept.
    fn answer(&mut self, now: Instant, nack: &TransportLayerNack) {
        for pair in &nack.nacks {
            let lost = pair.lost_packets;
            let seqs = std::iter::once(pair.packet_id).chain(
                (0..16u16)
                    .filter(move |i| lost & (1 << i) != 0)
                    .map(move |i| pair.packet_id.wrapping_add(i + 1)),
            );
            for seq in seqs {
                if let Some(packet) = self.get(nack.media_ssrc, seq).cloned() {
                    self.writes.push_back(TaggedPacket {
                        now,
                        transport: TransportContext::default(),
                        message: AttributedPacket::new(Packet::Rtp(packet))
                            .with(Attribute::Retransmission),
                    });
                }
            }
        }
    }

    /// Packets kept now, over all streams (for tests).
    pub fn kept(&self) -> usize {
        self.streams
            .iter()
            .map(|s| s.ring.iter().flatten().count())
            .sum()
    }

    /// Streams whose ring is allocated (for tests: only streams that have sent).
    pub fn allocated(&self) -> usize {
        self.streams.iter().filter(|s| !s.ring.is_empty()).count()
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for Retransmitter {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for p in packets {
                if let Some(nack) = p.as_any().downcast_ref::<TransportLayerNack>() {
                    self.answer(msg.now, nack);
                }
            }
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtp(packet) = &msg.message.packet {
            self.store(packet);
        }
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.writes.pop_front()
    }
}

impl Interceptor for Retransmitter {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        // Generic NACK ("nack" without a parameter; "nack pli" is a key-frame request).
        let nack = info
            .rtcp_feedback
            .iter()
            .any(|fb| fb.typ == "nack" && fb.parameter.is_empty());
        if nack && !self.streams.iter().any(|s| s.ssrc == info.ssrc) {
            self.streams.push(Stream {
                ssrc: info.ssrc,
                ring: Vec::new(),
                newest: None,
            });
        }
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.streams.retain(|s| s.ssrc != info.ssrc);
    }

    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}

    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::RTCPFeedback;
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::NackPair;

    fn video(ssrc: u32) -> StreamInfo {
        StreamInfo {
            ssrc,
            rtcp_feedback: vec![RTCPFeedback {
                typ: "nack".into(),
                parameter: String::new(),
            }],
            ..Default::default()
        }
    }

    fn packet(ssrc: u32, seq: u16) -> TaggedPacket {
        TaggedPacket {
            now: Instant::now(),
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtp(rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    ssrc,
                    sequence_number: seq,
                    ..Default::default()
                },
                payload: vec![seq as u8; 10].into(),
            })),
        }
    }

    /// Send `seqs` on `ssrc` through the responder, taking them out again as the
    /// connection would.
    fn send(r: &mut Retransmitter, ssrc: u32, seqs: impl IntoIterator<Item = u16>) {
        for seq in seqs {
            r.handle_write(packet(ssrc, seq))
                .expect("stored and passed on");
            while r.poll_write().is_some() {}
        }
    }

    /// The sequence numbers sent again after `nacks` on `ssrc`, each marked as a
    /// retransmission; the NACK itself goes on up the chain.
    fn nack(r: &mut Retransmitter, ssrc: u32, nacks: Vec<NackPair>) -> Vec<u16> {
        let rtcp = TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: ssrc,
            nacks,
        };
        r.handle_read(TaggedPacket {
            now: Instant::now(),
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtcp(vec![Box::new(rtcp)])),
        })
        .expect("answered and passed on");
        assert!(r.poll_read().is_some(), "the NACK is passed on");
        let mut seqs = Vec::new();
        while let Some(out) = r.poll_write() {
            assert!(out.message.has(&Attribute::Retransmission));
            if let Packet::Rtp(p) = out.message.packet {
                seqs.push(p.header.sequence_number);
            }
        }
        seqs
    }

    #[test]
    fn a_ring_exists_only_for_a_stream_that_sends() {
        let mut r = Retransmitter::new(64);
        for ssrc in 1..=5 {
            r.bind_local_stream(&video(ssrc));
        }
        // Audio (no NACK feedback) is not kept at all.
        r.bind_local_stream(&StreamInfo {
            ssrc: 9,
            ..Default::default()
        });
        assert_eq!(r.allocated(), 0, "five bound video streams, no ring yet");
        send(&mut r, 3, 0..10);
        send(&mut r, 9, 0..10);
        assert_eq!(r.allocated(), 1);
        assert_eq!(r.kept(), 10);
        send(&mut r, 3, 10..1000);
        assert_eq!(r.kept(), 64, "full ring: the last 64");
        r.unbind_local_stream(&video(3));
        assert_eq!((r.allocated(), r.kept()), (0, 0));
    }

    #[test]
    fn answers_nacks_from_the_last_packets_only() {
        let mut r = Retransmitter::new(64);
        r.bind_local_stream(&video(7));
        // Across the sequence number wrap.
        send(&mut r, 7, (0..100u16).map(|i| i.wrapping_add(65_500)));
        let newest = 99u16.wrapping_add(65_500);
        // The newest, and via the bitmask the next two after the oldest kept (63 back).
        let oldest = newest.wrapping_sub(63);
        let got = nack(
            &mut r,
            7,
            vec![
                NackPair {
                    packet_id: newest,
                    lost_packets: 0,
                },
                NackPair {
                    packet_id: oldest.wrapping_sub(1),
                    lost_packets: 0b11,
                },
            ],
        );
        assert_eq!(
            got,
            vec![newest, oldest, oldest.wrapping_add(1)],
            "the one 64 back is gone"
        );
        assert!(
            nack(&mut r, 8, vec![NackPair::new(newest)]).is_empty(),
            "other SSRC"
        );
        // A jump: what it skipped is not answered with stale packets.
        send(&mut r, 7, [newest.wrapping_add(10)]);
        let skipped = nack(
            &mut r,
            7,
            vec![NackPair {
                packet_id: newest.wrapping_add(1),
                lost_packets: 0xff,
            }],
        );
        assert!(skipped.is_empty());
        assert_eq!(nack(&mut r, 7, vec![NackPair::new(newest)]), vec![newest]);
    }
}
