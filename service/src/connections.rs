//! Who may hold a connection. Each peer (an IPv4 address, an IPv6 /64) may hold at most
//! `max_connections_per_peer`; the service at most `max_connections`. At either cap a new
//! connection takes the place of the oldest *idle* one (no request in progress: headers
//! not yet in, or kept alive between requests), from the peer holding the most; only when
//! every connection is working is the new one refused. One client holding hundreds of
//! idle sockets therefore never locks out a validator, whose connection sends its request
//! at once and is busy from then on. Refusals and evictions are logged at most once per
//! [`LOG_EVERY`], with counts.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Shortest time between two log lines about refused or evicted connections.
pub const LOG_EVERY: Duration = Duration::from_secs(5);

/// The key connections are counted under: IPv4 addresses one by one, IPv6 by /64 (one
/// host usually has a whole /64).
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

struct Entry {
    peer: IpAddr,
    /// Requests in progress on it.
    busy: Arc<AtomicUsize>,
    evict: Arc<Notify>,
}

#[derive(Default)]
struct Open {
    /// By id: ids grow, so the first idle entry is the oldest idle one.
    entries: BTreeMap<u64, Entry>,
    per_peer: HashMap<IpAddr, usize>,
    next_id: u64,
}

impl Open {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let e = self.entries.remove(&id)?;
        if let Some(n) = self.per_peer.get_mut(&e.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&e.peer);
            }
        }
        Some(e)
    }

    /// The idle connection to close first: among `peer`'s own (or everyone's when `None`),
    /// the oldest of the peer holding the most.
    fn victim(&self, peer: Option<IpAddr>) -> Option<u64> {
        self.entries
            .iter()
            .filter(|(_, e)| peer.is_none_or(|p| e.peer == p))
            .filter(|(_, e)| e.busy.load(Ordering::SeqCst) == 0)
            .map(|(&id, e)| (self.per_peer.get(&e.peer).copied().unwrap_or(0), id))
            // Most connections first, then the oldest (smallest id).
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(_, id)| id)
    }
}

#[derive(Default)]
struct Tally {
    since: Option<Instant>,
    last_log: Option<Instant>,
    evicted: u64,
    refused: u64,
}

/// The open connections.
pub struct Connections {
    max: usize,
    per_peer: usize,
    open: Mutex<Open>,
    tally: Mutex<Tally>,
}

/// Why a connection was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The peer's share is full of working connections.
    PeerFull,
    /// `max_connections` working connections.
    Full,
}

/// A connection's place: free again when dropped. `evicted` completes when the place was
/// given to a newer connection (the connection must then close).
pub struct Ticket {
    id: u64,
    pub busy: Arc<AtomicUsize>,
    pub evicted: Arc<Notify>,
    connections: Arc<Connections>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.connections.lock().remove(self.id);
    }
}

/// Marks a connection busy while a request is in progress.
pub struct Busy(Arc<AtomicUsize>);

impl Busy {
    pub fn enter(busy: &Arc<AtomicUsize>) -> Busy {
        busy.fetch_add(1, Ordering::SeqCst);
        Busy(busy.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Connections {
    pub fn new(max: usize, per_peer: usize) -> Arc<Connections> {
        Arc::new(Connections {
            max: max.max(1),
            per_peer: per_peer.clamp(1, max.max(1)),
            open: Mutex::new(Open::default()),
            tally: Mutex::new(Tally::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open connections now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A place for a new connection from `ip`, closing an idle one at a cap; refused when
    /// none is idle.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refused> {
        let peer = peer_key(ip);
        let mut evicted = 0;
        let mut open = self.lock();
        if open.per_peer.get(&peer).copied().unwrap_or(0) >= self.per_peer {
            let Some(id) = open.victim(Some(peer)) else {
                drop(open);
                let _ = self.note(0, 1);
                return Err(Refused::PeerFull);
            };
            Self::evict(&mut open, id);
            evicted += 1;
        }
        if open.entries.len() >= self.max {
            let Some(id) = open.victim(None) else {
                drop(open);
                let _ = self.note(evicted, 1);
                return Err(Refused::Full);
            };
            Self::evict(&mut open, id);
            evicted += 1;
        }
        let id = open.next_id;
        open.next_id += 1;
        let busy = Arc::new(AtomicUsize::new(0));
        let notify = Arc::new(Notify::new());
        open.entries.insert(
            id,
            Entry {
                peer,
                busy: busy.clone(),
                evict: notify.clone(),
            },
        );
        *open.per_peer.entry(peer).or_default() += 1;
        drop(open);
        if evicted > 0 {
            let _ = self.note(evicted, 0);
        }
        Ok(Ticket {
            id,
            busy,
            evicted: notify,
            connections: self.clone(),
        })
    }

    fn evict(open: &mut Open, id: u64) {
        if let Some(e) = open.remove(id) {
            // Stored as a permit if the connection's task is not waiting yet.
            e.evict.notify_one();
        }
    }

    /// Counts evictions and refusals; logs them at most once per [`LOG_EVERY`] (true when
    /// it did).
    fn note(&self, evicted: u64, refused: u64) -> bool {
        let mut t = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        t.since.get_or_insert(now);
        t.evicted += evicted;
        t.refused += refused;
        if t.last_log
            .is_some_and(|l| now.duration_since(l) < LOG_EVERY)
        {
            return false;
        }
        let since = t.since.map_or(Duration::ZERO, |s| now.duration_since(s));
        tracing::warn!(
            "connections at their cap (service.max_connections {}, {} per peer): {} idle \
             closed for newer ones and {} refused (all working) in the last {:.0} s",
            self.max,
            self.per_peer,
            t.evicted,
            t.refused,
            since.as_secs_f64()
        );
        *t = Tally {
            since: None,
            last_log: Some(now),
            evicted: 0,
            refused: 0,
        };
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn idle_connections_make_room_and_working_ones_do_not() {
        let c = Connections::new(4, 2);
        let a1 = c.admit(ip("10.0.0.1")).unwrap();
        let a2 = c.admit(ip("10.0.0.1")).unwrap();
        // The peer's third: its oldest idle one goes.
        let a3 = c.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(c.len(), 2);
        assert!(!c.lock().entries.contains_key(&a1.id));
        // Both of the peer's working: refused.
        let _b2 = Busy::enter(&a2.busy);
        let _b3 = Busy::enter(&a3.busy);
        assert_eq!(c.admit(ip("10.0.0.1")).err(), Some(Refused::PeerFull));
        // Another peer still gets in, up to the global cap...
        let _o1 = c.admit(ip("10.0.0.2")).unwrap();
        let o2 = c.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(c.len(), 4);
        // ...where an idle one is closed for a third peer; with all working, refused.
        let _v = c.admit(ip("10.0.0.3")).unwrap();
        assert_eq!(c.len(), 4);
        let _b = Busy::enter(&o2.busy);
        let survivors: Vec<u64> = c.lock().entries.keys().copied().collect();
        assert!(survivors.contains(&o2.id), "{survivors:?}");
        drop(a1);
        assert_eq!(c.len(), 4, "an evicted ticket's drop frees nothing twice");
    }

    #[test]
    fn the_peer_with_the_most_connections_loses_an_idle_one_first() {
        let c = Connections::new(3, 3);
        let _v = c.admit(ip("192.0.2.9")).unwrap();
        let f1 = c.admit(ip("198.51.100.1")).unwrap();
        let _f2 = c.admit(ip("198.51.100.1")).unwrap();
        let _n = c.admit(ip("203.0.113.5")).unwrap();
        let open = c.lock();
        assert!(!open.entries.contains_key(&f1.id));
        assert_eq!(open.per_peer[&ip("192.0.2.9")], 1);
    }

    #[test]
    fn refusals_are_logged_once_per_period_with_counts() {
        let c = Connections::new(1, 1);
        // A flood's thousand refusals in a burst: the first logs, the rest are counted.
        let logged = (0..1000).filter(|_| c.note(0, 1)).count();
        assert_eq!(logged, 1);
        assert_eq!(c.tally.lock().unwrap().refused, 999);
    }

    #[test]
    fn ipv6_peers_are_counted_by_64() {
        assert_eq!(peer_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(peer_key(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
    }
}
