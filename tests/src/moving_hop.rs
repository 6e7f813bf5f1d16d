//! A UDP hop between a test's call member and the relay's SFU that can change, mid-call, the
//! address the relay sees the member at: what a NAT rebinding or a phone moving between
//! networks looks like from the relay's side. The member itself notices nothing (it always
//! talks to the hop's one front address).

use std::net::SocketAddr;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The hop. Dropping it stops it.
pub struct MovingHop {
    front: SocketAddr,
    moves: mpsc::UnboundedSender<()>,
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

impl MovingHop {
    /// Relay datagrams between whoever first writes to [`MovingHop::front`] and `relay`.
    pub async fn start(relay: SocketAddr) -> MovingHop {
        let front = loopback_socket().await;
        let front_addr = front.local_addr().expect("front address");
        let (moves, mut moved) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut back = loopback_socket().await;
            let mut member: Option<SocketAddr> = None;
            let mut from_member = vec![0u8; 2048];
            let mut from_relay = vec![0u8; 2048];
            loop {
                tokio::select! {
                    r = front.recv_from(&mut from_member) => {
                        let Ok((n, from)) = r else { continue };
                        member = Some(from);
                        let _ = back.send_to(&from_member[..n], relay).await;
                    }
                    r = back.recv_from(&mut from_relay) => {
                        let Ok((n, _)) = r else { continue };
                        if let Some(member) = member {
                            let _ = front.send_to(&from_relay[..n], member).await;
                        }
                    }
                    m = moved.recv() => {
                        if m.is_none() {
                            return;
                        }
                        // A new source port towards the relay; the old one is closed, so
                        // what the relay still sends there is lost, as after a real move.
                        back = loopback_socket().await;
                    }
                }
            }
        });
        MovingHop {
            front: front_addr,
            moves,
            task,
        }
    }

    /// Where the member sends (the relay's candidate, as the member is told it).
    pub fn front(&self) -> SocketAddr {
        self.front
    }

    /// From now on the relay sees the member at a new address.
    pub fn move_member(&self) {
        let _ = self.moves.send(());
    }
}
