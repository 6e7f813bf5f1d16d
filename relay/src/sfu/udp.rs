//! A shard's UDP socket with batched I/O and no `unsafe` of ours: `recvmmsg` (with GRO
//! where the kernel offers it) and segmented sends (GSO) through quinn-udp, `sendmmsg`
//! through nix, buffers kept
//! and reused so no datagram costs an allocation here.
//!
//! Errors never stop the shard: a datagram that cannot be sent is dropped and counted.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use bytes::BytesMut;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage};
use quinn_udp::{RecvMeta, UdpSocketState};

/// Datagrams (or GRO-coalesced runs of them) read by one `recvmmsg`.
pub const RECV_BATCH: usize = quinn_udp::BATCH_SIZE;
/// Room per receive buffer: a whole coalesced run (64 kB, as quinn uses).
const RECV_BUF: usize = 64 * 1024;
/// Datagrams written by one `sendmmsg`.
pub const SEND_BATCH: usize = 64;
/// Most datagrams in one segmented (GSO) send: the kernel's own limit is 64.
const MAX_GSO_SEGMENTS: usize = 64;
/// Most bytes in one segmented send (a UDP datagram's limit, with room for headers).
const MAX_GSO_BYTES: usize = 60_000;
/// Kernel buffers asked for: a burst of video to several receivers must not overflow.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// What a socket has counted (numbers only, never an address).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoCounts {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams that could not be sent (full buffer, unreachable destination).
    pub send_dropped: u64,
    /// `recvmmsg` calls that returned at least one datagram.
    pub recv_calls: u64,
    /// `sendmmsg` calls.
    pub send_calls: u64,
}

/// A bound socket, before it becomes a [`Socket`] on its thread.
#[derive(Debug)]
pub struct Bound {
    sock: UdpSocket,
    state: UdpSocketState,
}

impl Bound {
    /// The address it is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }
}

/// One shard's socket. See the module documentation.
pub struct Socket {
    sock: UdpSocket,
    state: UdpSocketState,
    recv_buf: Vec<u8>,
    metas: [RecvMeta; RECV_BATCH],
    out: Vec<(SocketAddr, BytesMut)>,
    headers: MultiHeaders<SockaddrStorage>,
    addrs: Vec<Option<SockaddrStorage>>,
    /// A run of datagrams laid end to end for one segmented send.
    gso_buf: Vec<u8>,
    counts: IoCounts,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl Socket {
    /// Bind `addr` (port 0: any free port), non-blocking. The result is sent to the
    /// shard's thread and made a [`Socket`] there ([`Socket::new`]): the send headers
    /// hold raw pointers and stay on the thread that uses them.
    pub fn bind(addr: SocketAddr) -> io::Result<Bound> {
        let sock = UdpSocket::bind(addr)?;
        let state = UdpSocketState::new((&sock).into())?;
        // Best effort: a kernel capped lower still works, with more drops under bursts.
        let _ = state.set_recv_buffer_size((&sock).into(), SOCKET_BUFFER);
        let _ = state.set_send_buffer_size((&sock).into(), SOCKET_BUFFER);
        Ok(Bound { sock, state })
    }

    /// The socket with its batch buffers.
    pub fn new(bound: Bound) -> Self {
        Socket {
            sock: bound.sock,
            state: bound.state,
            recv_buf: vec![0; RECV_BATCH * RECV_BUF],
            metas: [RecvMeta::default(); RECV_BATCH],
            out: Vec::with_capacity(SEND_BATCH * 4),
            headers: MultiHeaders::preallocate(SEND_BATCH, None),
            addrs: Vec::with_capacity(SEND_BATCH),
            gso_buf: Vec::with_capacity(MAX_GSO_BYTES),
            counts: IoCounts::default(),
        }
    }

    /// The address it is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Wait until a datagram can be read or `timeout` passes (rounded up to whole ms).
    /// `true` when readable.
    pub fn wait(&self, timeout: Duration) -> bool {
        let ms = timeout.as_micros().div_ceil(1000).min(u128::from(u16::MAX));
        let ms = u16::try_from(ms).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
        matches!(nix::poll::poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0)
    }

    /// Read one batch and hand each datagram to `each`; the number of datagrams read, 0
    /// when none was waiting.
    pub fn recv(&mut self, mut each: impl FnMut(SocketAddr, &[u8])) -> usize {
        let n = {
            let mut chunks = self.recv_buf.chunks_mut(RECV_BUF);
            let mut slices: [IoSliceMut<'_>; RECV_BATCH] =
                std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
            match self
                .state
                .recv((&self.sock).into(), &mut slices, &mut self.metas)
            {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return 0,
                Err(e) => {
                    // ICMP errors surface here on Linux (ECONNREFUSED...): nothing to read.
                    tracing::trace!(error = %e.kind(), "SFU socket receive error");
                    return 0;
                }
            }
        };
        let mut datagrams = 0;
        for (i, meta) in self.metas.iter().take(n).enumerate() {
            let start = i * RECV_BUF;
            let Some(buf) = self.recv_buf.get(start..start + meta.len.min(RECV_BUF)) else {
                continue;
            };
            for d in gro_segments(buf, meta.stride) {
                datagrams += 1;
                each(meta.addr, d);
            }
        }
        if datagrams > 0 {
            self.counts.recv_calls += 1;
        }
        self.counts.received += datagrams as u64;
        datagrams
    }

    /// Queue a datagram for the next [`Socket::flush`].
    pub fn push(&mut self, to: SocketAddr, datagram: BytesMut) {
        self.out.push((to, datagram));
    }

    /// Datagrams queued.
    pub fn queued(&self) -> usize {
        self.out.len()
    }

    /// Send everything queued: a run of datagrams of one size to one destination as one
    /// segmented send (UDP GSO, where the kernel offers it: one trip through the stack for
    /// the run), the others [`SEND_BATCH`] per `sendmmsg`, in the order they were queued.
    pub fn flush(&mut self) {
        let out = std::mem::take(&mut self.out);
        let gso = self.state.max_gso_segments().min(MAX_GSO_SEGMENTS);
        let mut singles = 0;
        let mut i = 0;
        while i < out.len() {
            let (to, first) = &out[i];
            let mut j = i + 1;
            let mut bytes = first.len();
            while j < out.len()
                && j - i < gso
                && out[j].0 == *to
                && out[j].1.len() == first.len()
                && bytes + first.len() <= MAX_GSO_BYTES
            {
                bytes += first.len();
                j += 1;
            }
            if j - i < 2 {
                i += 1;
                continue;
            }
            if !self.send_each(&out[singles..i]) {
                self.counts.send_dropped += (out.len() - i) as u64;
                singles = out.len();
                break;
            }
            self.gso_buf.clear();
            for (_, d) in &out[i..j] {
                self.gso_buf.extend_from_slice(d);
            }
            let transmit = quinn_udp::Transmit {
                destination: *to,
                ecn: None,
                contents: &self.gso_buf,
                segment_size: Some(first.len()),
                src_ip: None,
            };
            self.counts.send_calls += 1;
            match self.state.try_send((&self.sock).into(), &transmit) {
                Ok(()) => self.counts.sent += (j - i) as u64,
                // A full buffer (lost, as on the wire) or a refusing destination.
                Err(_) => self.counts.send_dropped += (j - i) as u64,
            }
            i = j;
            singles = j;
        }
        if singles < out.len() {
            self.send_each(&out[singles..]);
        }
        self.out = out;
        self.out.clear();
    }

    /// `sendmmsg` for `datagrams`, [`SEND_BATCH`] per system call; `false` when the
    /// kernel's buffer filled (what was left of them is counted as dropped).
    fn send_each(&mut self, datagrams: &[(SocketAddr, BytesMut)]) -> bool {
        let mut done = 0;
        while done < datagrams.len() {
            let batch = &datagrams[done..(done + SEND_BATCH).min(datagrams.len())];
            self.addrs.clear();
            self.addrs
                .extend(batch.iter().map(|(a, _)| Some(SockaddrStorage::from(*a))));
            // On the stack: no allocation per batch.
            let slices: [[IoSlice<'_>; 1]; SEND_BATCH] =
                std::array::from_fn(|i| [IoSlice::new(batch.get(i).map_or(&[][..], |(_, d)| d))]);
            self.counts.send_calls += 1;
            let result = nix::sys::socket::sendmmsg(
                self.sock.as_raw_fd(),
                &mut self.headers,
                &slices[..batch.len()],
                &self.addrs,
                [],
                MsgFlags::empty(),
            )
            .map(|r| r.count());
            match result {
                Ok(0) | Err(nix::errno::Errno::EAGAIN) => {
                    // The kernel's buffer is full: what is left of this round is lost, as
                    // it would be on the wire.
                    self.counts.send_dropped += (datagrams.len() - done) as u64;
                    return false;
                }
                Ok(sent) => {
                    self.counts.sent += sent as u64;
                    done += sent;
                }
                Err(_) => {
                    // This destination refused (an ICMP error came back): skip it.
                    self.counts.send_dropped += 1;
                    done += 1;
                }
            }
        }
        true
    }

    /// Counts so far.
    pub fn counts(&self) -> IoCounts {
        self.counts
    }
}

/// The datagrams in one received buffer: a GRO buffer holds several of `stride` bytes each
/// (the last may be shorter); `stride` 0 means the buffer is one datagram.
pub fn gro_segments(buf: &[u8], stride: usize) -> std::slice::Chunks<'_, u8> {
    buf.chunks(if stride == 0 {
        buf.len().max(1)
    } else {
        stride
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gro_buffer_splits_at_its_stride_and_a_plain_one_stays_whole() {
        let buf = [1u8, 1, 1, 2, 2, 2, 3];
        let parts: Vec<&[u8]> = gro_segments(&buf, 3).collect();
        assert_eq!(parts, [&[1u8, 1, 1][..], &[2, 2, 2], &[3]]);
        assert_eq!(gro_segments(&buf, 0).count(), 1);
        assert_eq!(gro_segments(&[], 0).count(), 0);
    }

    /// Runs of one size to one destination go out segmented, the rest one by one; every
    /// datagram arrives whole, in the order queued, wherever the kernel has GSO or not.
    #[test]
    fn flush_keeps_each_datagram_and_its_order() -> Result<(), Box<dyn std::error::Error>> {
        let mut socket = Socket::new(Socket::bind("127.0.0.1:0".parse()?)?);
        let a = UdpSocket::bind("127.0.0.1:0")?;
        let b = UdpSocket::bind("127.0.0.1:0")?;
        let (to_a, to_b) = (a.local_addr()?, b.local_addr()?);
        let datagram = |tag: u8, len: usize| BytesMut::from(&vec![tag; len][..]);
        let mut expected_a = Vec::new();
        let mut expected_b = Vec::new();
        // A run of five to a, one shorter to a, one to b, a run of three to b, one to a.
        for (tag, to, len) in [
            (1, to_a, 1000),
            (2, to_a, 1000),
            (3, to_a, 1000),
            (4, to_a, 1000),
            (5, to_a, 1000),
            (6, to_a, 300),
            (7, to_b, 1000),
            (8, to_b, 700),
            (9, to_b, 700),
            (10, to_b, 700),
            (11, to_a, 1000),
        ] {
            socket.push(to, datagram(tag, len));
            if to == to_a {
                expected_a.push((tag, len));
            } else {
                expected_b.push((tag, len));
            }
        }
        socket.flush();
        assert_eq!(socket.counts().sent, 11);
        assert_eq!(socket.queued(), 0);
        for (sock, expected) in [(&a, expected_a), (&b, expected_b)] {
            sock.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut buf = [0u8; 2048];
            for (tag, len) in expected {
                let n = sock.recv(&mut buf)?;
                assert_eq!(n, len);
                assert!(buf[..n].iter().all(|&x| x == tag));
            }
        }
        Ok(())
    }
}
