//! A lossy UDP proxy for QUIC: `tc netem` is not available on this machine (no `sch_netem`
//! even inside a network namespace of our own), so loss is made here. Each client address
//! gets its own upstream socket; every datagram, either way, is dropped with probability
//! `loss`, decided by a xorshift generator from a fixed seed (the same drop pattern per
//! direction from run to run, up to the interleaving of clients).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use tokio::net::UdpSocket;

/// Largest datagram carried (QUIC datagrams are far smaller; GSO batches arrive split).
const MAX_DATAGRAM: usize = 65_536;

/// Decides drops: xorshift64*, fixed seed.
struct Dice {
    state: u64,
    /// Drop when the next draw is below this (loss × 2^64).
    below: u64,
}

impl Dice {
    fn new(seed: u64, loss: f64) -> Self {
        Dice {
            state: seed | 1,
            below: (loss.clamp(0.0, 1.0) * u64::MAX as f64) as u64,
        }
    }

    fn drop_next(&mut self) -> bool {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) < self.below
    }
}

fn roll(dice: &Mutex<Dice>) -> bool {
    dice.lock().map(|mut d| d.drop_next()).unwrap_or(false)
}

/// Start a proxy in front of `upstream`; returns the address clients use. Runs until the
/// runtime ends.
pub async fn start(upstream: SocketAddr, loss: f64, seed: u64) -> Result<SocketAddr> {
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
    let addr = front.local_addr()?;
    let up_dice = Arc::new(Mutex::new(Dice::new(seed, loss)));
    let down_dice = Arc::new(Mutex::new(Dice::new(seed.rotate_left(17) ^ 0x9e37, loss)));
    tokio::spawn(async move {
        let mut clients: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        while let Ok((n, from)) = front.recv_from(&mut buf).await {
            let up = match clients.get(&from) {
                Some(up) => up.clone(),
                None => {
                    let Ok(up) = UdpSocket::bind("127.0.0.1:0").await else {
                        continue;
                    };
                    if up.connect(upstream).await.is_err() {
                        continue;
                    }
                    let up = Arc::new(up);
                    clients.insert(from, up.clone());
                    let (back, front, dice) = (up.clone(), front.clone(), down_dice.clone());
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; MAX_DATAGRAM];
                        while let Ok(n) = back.recv(&mut buf).await {
                            if !roll(&dice) {
                                let _ = front.send_to(buf.get(..n).unwrap_or_default(), from).await;
                            }
                        }
                    });
                    up
                }
            };
            if !roll(&up_dice) {
                let _ = up.send(buf.get(..n).unwrap_or_default()).await;
            }
        }
    });
    Ok(addr)
}
