//! Batched UDP receive that gives each datagram the time the kernel queued it on the
//! receiving socket (`SO_TIMESTAMPNS`), not the time the bench got round to reading it.
//!
//! The latency run at half load ([`super::saturate_latency`]) measures from "the generator's
//! `sendmmsg` returned" to "the datagram reached the subscriber's socket". Timed at the
//! read instead, the figure also held how long the bench's own receiver thread waited for
//! a core (it shares one with the paced blaster) or was busy driving the members' `rtc`
//! connections with the relay's RTCP, which the echo never sends: in a run on this 2-core
//! machine the delays grew for 20–40 ms at a time and the relay's p99 was 3× the echo's,
//! while the relay's shard, alone on its core, was preempted about 150 times a second.
//!
//! GRO is left as quinn-udp's `UdpSocketState::new` set it: a coalesced buffer has one
//! stamp, and its segments were sent together.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, setsockopt, sockopt,
};
use nix::time::{ClockId, clock_gettime};

/// Datagrams (or GRO buffers) per `recvmmsg`.
pub(super) const BATCH: usize = 32;
/// Room per buffer: a whole GRO buffer of the loopback.
const BUF: usize = 64 * 1024;
/// Room for each datagram's control messages: the stamp, the GRO size, and those quinn-udp
/// turns on (packet info, ECN); a truncated set is an error (`ENOBUFS` from nix).
const CMSG_ROOM: usize = 256;

/// Ask the kernel to stamp every datagram `socket` receives.
pub(super) fn enable(socket: &UdpSocket) -> io::Result<()> {
    setsockopt(socket, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)
}

/// One datagram's place in the buffers and what came with it.
#[derive(Clone, Copy)]
struct Got {
    len: usize,
    stride: usize,
    from: Option<SocketAddr>,
    arrived: Instant,
}

/// Buffers for [`BATCH`] datagrams at a time, with their control messages.
pub(super) struct StampedReceiver {
    bufs: Vec<u8>,
    got: Vec<Got>,
    /// Buffers that came without a stamp (their arrival is the read's time): printed, so
    /// a figure never silently falls back to read times.
    pub(super) unstamped: u64,
}

impl StampedReceiver {
    pub(super) fn new() -> StampedReceiver {
        StampedReceiver {
            bufs: vec![0; BATCH * BUF],
            got: Vec::with_capacity(BATCH),
            unstamped: 0,
        }
    }

    /// Read what `socket` holds, at most one batch, without waiting; hand each datagram
    /// (each segment of a GRO buffer) to `each` with its sender and the time the kernel
    /// queued it (the read's time where no stamp came). The number of buffers read: less
    /// than [`BATCH`] when the socket is empty.
    pub(super) fn recv(
        &mut self,
        socket: &UdpSocket,
        mut each: impl FnMut(Option<SocketAddr>, &[u8], Instant),
    ) -> io::Result<usize> {
        self.got.clear();
        // Fresh headers for every call: nix's `recvmmsg` leaves each header's control
        // length at what the last call used, and a later, longer set would be cut off.
        let mut headers =
            MultiHeaders::<SockaddrStorage>::preallocate(BATCH, Some(vec![0; CMSG_ROOM]));
        {
            let mut chunks = self.bufs.chunks_mut(BUF);
            let mut slices: [[IoSliceMut<'_>; 1]; BATCH] =
                std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
            let results = recvmmsg(
                socket.as_raw_fd(),
                &mut headers,
                slices.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            )
            .map_err(io::Error::from)?;
            // The stamps are the realtime clock's; each becomes an age at this instant, so
            // nothing depends on how the two clocks drift apart over a run.
            let read = Instant::now();
            let real = clock_gettime(ClockId::CLOCK_REALTIME).map_err(io::Error::from)?;
            for msg in results {
                let mut got = Got {
                    len: msg.bytes,
                    stride: 0,
                    from: msg.address.as_ref().and_then(to_std),
                    arrived: read,
                };
                let mut stamped = false;
                for cmsg in msg.cmsgs().map_err(io::Error::from)? {
                    match cmsg {
                        ControlMessageOwned::ScmTimestampns(stamp) => {
                            let age = Duration::from(real).saturating_sub(Duration::from(stamp));
                            got.arrived = read.checked_sub(age).unwrap_or(read);
                            stamped = true;
                        }
                        ControlMessageOwned::UdpGroSegments(size) => {
                            got.stride = usize::try_from(size).unwrap_or(0);
                        }
                        _ => {}
                    }
                }
                self.unstamped += u64::from(!stamped);
                self.got.push(got);
            }
        }
        for (j, got) in self.got.iter().enumerate() {
            let Some(data) = self.bufs.get(j * BUF..j * BUF + got.len.min(BUF)) else {
                continue;
            };
            for d in approdo_relay::sfu::udp::gro_segments(data, got.stride) {
                each(got.from, d, got.arrived);
            }
        }
        Ok(self.got.len())
    }
}

fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_the_time_the_datagram_was_queued_not_read() -> io::Result<()> {
        let rx = UdpSocket::bind("127.0.0.1:0")?;
        enable(&rx)?;
        let tx = UdpSocket::bind("127.0.0.1:0")?;
        let mut r = StampedReceiver::new();
        // The kernel turns stamping on a moment after the first socket asks (until then a
        // datagram is stamped when read): a few tries.
        for _ in 0..20 {
            let sent = Instant::now();
            tx.send_to(b"one", rx.local_addr()?)?;
            std::thread::sleep(Duration::from_millis(30));
            let mut seen = Vec::new();
            let n = r.recv(&rx, |from, d, at| seen.push((from, d.to_vec(), at)))?;
            let read = Instant::now();
            assert_eq!(n, 1);
            let (from, data, at) = &seen[0];
            assert_eq!(*from, Some(tx.local_addr()?));
            assert_eq!(data, b"one");
            // Queued right after the send, 30 ms before the read.
            if read.duration_since(*at) >= Duration::from_millis(25) {
                assert!(at.duration_since(sent) < Duration::from_millis(20));
                return Ok(());
            }
        }
        panic!("no datagram carried the time it was queued");
    }
}
