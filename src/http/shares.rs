//! Streams per client address: one address may hold at most its share of the stream
//! places (`--max-clients-per-address`), so that one host reading slowly on many
//! connections cannot take every place from the others. IPv6 clients count per /64
//! network, the block one host can take addresses from at will.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Streams held now, per address.
pub struct Shares {
    /// 0: no limit per address.
    max: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One stream's place in its address's share; given back when dropped.
pub struct Share {
    shares: Arc<Shares>,
    key: IpAddr,
}

impl Shares {
    pub fn new(max: usize) -> Shares {
        Shares {
            max,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// The limit per address, if any.
    pub fn max(&self) -> Option<usize> {
        (self.max > 0).then_some(self.max)
    }

    /// A place for one more stream to `ip`, unless its share is used up.
    pub fn try_take(self: &Arc<Self>, ip: IpAddr) -> Option<Share> {
        let key = crate::net::client_host(ip);
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let n = held.entry(key).or_insert(0);
        if self.max > 0 && *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Share {
            shares: self.clone(),
            key,
        })
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut held = self.shares.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_share() {
        let shares = Arc::new(Shares::new(2));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = shares.try_take(a).unwrap();
        let _a2 = shares.try_take(a).unwrap();
        assert!(shares.try_take(a).is_none());
        let _b1 = shares.try_take(b).unwrap();
        drop(a1);
        assert!(shares.try_take(a).is_some());
        // One /64 is one host's.
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        let _x = shares.try_take(v6a).unwrap();
        let _y = shares.try_take(v6b).unwrap();
        assert!(shares.try_take("2001:db8::3".parse().unwrap()).is_none());
        assert!(Arc::new(Shares::new(0)).try_take(a).is_some());
    }
}
