//! A UDP hop between a test's call member and the relay's SFU that can change, mid-call, the
//! address the relay sees the member at: what a NAT rebinding or a phone moving between
//! networks looks like from the relay's side. The member itself notices nothing (it always
//! talks to the hop's one front address).
//!
//! It can also play an on-path attacker: replay, from an address of its own, a connectivity
//! check and media the member really sent, and count the media the relay then sends there.
//! And it can lose a burst of what the relay sends the member (a lossy last mile), for the
//! relay's retransmissions to fill in.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The member's latest media datagrams the hop keeps, for a replay.
const KEPT: usize = 64;

enum Command {
    Move,
    Replay,
    Lose(u64),
}

/// The hop. Dropping it stops it.
pub struct MovingHop {
    front: SocketAddr,
    commands: mpsc::UnboundedSender<Command>,
    attacker_media: Arc<AtomicU64>,
    lost_media: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for MovingHop {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn loopback_socket() -> UdpSocket {
    UdpSocket::bind(("127.0.0.1", 0))
        .await
        .expect("bind a loopback UDP socket")
}

/// A STUN binding request (RFC 8489: type 0x0001, magic cookie).
fn is_binding_request(d: &[u8]) -> bool {
    d.len() >= 20 && d[0] == 0x00 && d[1] == 0x01 && d[4..8] == [0x21, 0x12, 0xA4, 0x42]
}

/// RTP or RTCP (RFC 7983: first byte 128–191).
fn is_media(d: &[u8]) -> bool {
    d.first().is_some_and(|b| (128..192).contains(b))
}

/// Play the member's last check and media again from a socket of the attacker's, ten times
/// over a second (so the replays land among the member's own packets), and count the media
/// the relay sends that socket from then on.
async fn replay(relay: SocketAddr, check: Vec<u8>, media: VecDeque<Vec<u8>>, seen: Arc<AtomicU64>) {
    let attacker = Arc::new(loopback_socket().await);
    let listening = attacker.clone();
    let counter = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, _)) = listening.recv_from(&mut buf).await {
            if is_media(&buf[..n]) {
                seen.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    for _ in 0..10 {
        let _ = attacker.send_to(&check, relay).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        for d in &media {
            let _ = attacker.send_to(d, relay).await;
        }
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    let _ = counter.await;
}

impl MovingHop {
    /// Relay datagrams between whoever first writes to [`MovingHop::front`] and `relay`.
    pub async fn start(relay: SocketAddr) -> MovingHop {
        let front = loopback_socket().await;
        let front_addr = front.local_addr().expect("front address");
        let (commands, mut incoming) = mpsc::unbounded_channel();
        let attacker_media = Arc::new(AtomicU64::new(0));
        let seen = attacker_media.clone();
        let lost_media = Arc::new(AtomicU64::new(0));
        let lost = lost_media.clone();
        let task = tokio::spawn(async move {
            let mut back = loopback_socket().await;
            let mut member: Option<SocketAddr> = None;
            let mut check: Option<Vec<u8>> = None;
            let mut media: VecDeque<Vec<u8>> = VecDeque::with_capacity(KEPT + 1);
            let mut from_member = vec![0u8; 2048];
            let mut from_relay = vec![0u8; 2048];
            let mut attacker: Option<JoinHandle<()>> = None;
            let mut lose = 0u64;
            loop {
                tokio::select! {
                    r = front.recv_from(&mut from_member) => {
                        let Ok((n, from)) = r else { continue };
                        member = Some(from);
                        let d = &from_member[..n];
                        if is_binding_request(d) {
                            check = Some(d.to_vec());
                        } else if is_media(d) {
                            media.push_back(d.to_vec());
                            if media.len() > KEPT {
                                media.pop_front();
                            }
                        }
                        let _ = back.send_to(d, relay).await;
                    }
                    r = back.recv_from(&mut from_relay) => {
                        let Ok((n, _)) = r else { continue };
                        if lose > 0 && is_media(&from_relay[..n]) {
                            lose -= 1;
                            lost.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        if let Some(member) = member {
                            let _ = front.send_to(&from_relay[..n], member).await;
                        }
                    }
                    c = incoming.recv() => match c {
                        None => {
                            if let Some(a) = attacker.take() {
                                a.abort();
                            }
                            return;
                        }
                        // A new source port towards the relay; the old one is closed, so
                        // what the relay still sends there is lost, as after a real move.
                        Some(Command::Move) => back = loopback_socket().await,
                        Some(Command::Lose(n)) => lose = n,
                        Some(Command::Replay) => {
                            if let Some(check) = check.clone() {
                                let media = std::mem::take(&mut media);
                                attacker = Some(tokio::spawn(replay(relay, check, media, seen.clone())));
                            }
                        }
                    },
                }
            }
        });
        MovingHop {
            front: front_addr,
            commands,
            attacker_media,
            lost_media,
            task,
        }
    }

    /// Where the member sends (the relay's candidate, as the member is told it).
    pub fn front(&self) -> SocketAddr {
        self.front
    }

    /// From now on the relay sees the member at a new address.
    pub fn move_member(&self) {
        let _ = self.commands.send(Command::Move);
    }

    /// Replay the member's latest check and the latest media it sent (64 datagrams, well
    /// inside any replay window) from an attacker's address of the hop's own.
    pub fn replay_from_elsewhere(&self) {
        let _ = self.commands.send(Command::Replay);
    }

    /// Lose the next `n` media datagrams (RTP or RTCP) the relay sends the member.
    pub fn lose_towards_member(&self, n: u64) {
        let _ = self.commands.send(Command::Lose(n));
    }

    /// Media datagrams lost so far by [`MovingHop::lose_towards_member`].
    pub fn lost_media(&self) -> u64 {
        self.lost_media.load(Ordering::Relaxed)
    }

    /// Media datagrams the relay sent to the attacker's address.
    pub fn attacker_media(&self) -> u64 {
        self.attacker_media.load(Ordering::Relaxed)
    }
}
