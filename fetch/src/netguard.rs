//! Refusing downloads from internal addresses (SSRF): a challenge URL must not make the miner
//! fetch from its own loopback, the LAN or cloud metadata endpoints.
//!
//! The check runs on the addresses DNS returns, inside the HTTP client's resolver, so the
//! connection uses exactly the addresses that were checked (no DNS-rebinding window). URLs
//! with a literal IP never reach the resolver and are checked separately ([`check_url`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why an address is not a public unicast one, or `None` if it is.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

/// The IPv4 special-purpose registry (IANA, RFC 6890 and updates): every block whose
/// addresses are not globally reachable, plus multicast and broadcast.
fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    let within = |net: [u8; 4], bits: u32| {
        let mask = if bits == 0 {
            0
        } else {
            u32::MAX << (32 - bits)
        };
        (u32::from(ip) & mask) == (u32::from_be_bytes(net) & mask)
    };
    if ip.is_unspecified() || o[0] == 0 {
        Some("an unspecified (0.0.0.0/8) address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if within([100, 64, 0, 0], 10) {
        Some("a shared (carrier-grade NAT) address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if within([192, 0, 0, 0], 24) {
        Some("an IETF protocol assignment (192.0.0.0/24)")
    } else if within([192, 0, 2, 0], 24)
        || within([198, 51, 100, 0], 24)
        || within([203, 0, 113, 0], 24)
    {
        Some("a documentation (TEST-NET) address")
    } else if within([198, 18, 0, 0], 15) {
        Some("a benchmarking (198.18.0.0/15) address")
    } else if within([192, 88, 99, 0], 24) {
        Some("a 6to4 relay anycast (192.88.99.0/24) address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_broadcast() || o[0] >= 240 {
        Some("a reserved address")
    } else {
        None
    }
}

/// The IPv6 special-purpose registry: addresses that embed an IPv4 address (mapped,
/// compatible, NAT64, 6to4, Teredo) are judged by the address they embed; everything
/// outside global unicast (2000::/3) is refused, and within it the blocks that are not
/// globally reachable.
fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    let within = |net: [u16; 8], bits: u32| {
        let mask = if bits == 0 {
            0
        } else {
            u128::MAX << (128 - bits)
        };
        (u128::from(ip) & mask) == (u128::from(Ipv6Addr::from(net)) & mask)
    };
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    // ::a.b.c.d (deprecated IPv4-compatible) and 64:ff9b::a.b.c.d (NAT64): the last 32 bits.
    if s[..6] == [0, 0, 0, 0, 0, 0] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return forbidden_v4(v4(s[6], s[7]));
    }
    // 6to4 (2002::/16): the IPv4 address is bits 16..48.
    if s[0] == 0x2002 {
        return forbidden_v4(v4(s[1], s[2])).map(|_| "a 6to4 address of a non-public IPv4 address");
    }
    // Teredo (2001::/32): the server's IPv4 address in bits 32..64, the client's inverted in
    // the last 32 bits; either one internal refuses it.
    if s[0] == 0x2001 && s[1] == 0 {
        let client = v4(!s[6], !s[7]);
        let server = v4(s[2], s[3]);
        return (forbidden_v4(client).is_some() || forbidden_v4(server).is_some())
            .then_some("a Teredo address of a non-public IPv4 address");
    }
    if within([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48) {
        Some("a local-use NAT64 (64:ff9b:1::/48) address")
    } else if within([0x100, 0, 0, 0, 0, 0, 0, 0], 64) {
        Some("a discard-only (100::/64) address")
    } else if within([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32)
        || within([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20)
    {
        Some("a documentation address")
    } else if within([0x2001, 0, 0, 0, 0, 0, 0, 0], 23)
        // The globally reachable ones of 2001::/23: PCP and TURN anycast, AMT, AS112,
        // ORCHIDv2.
        && !(within([0x2001, 1, 0, 0, 0, 0, 0, 1], 128)
            || within([0x2001, 1, 0, 0, 0, 0, 0, 2], 128)
            || within([0x2001, 3, 0, 0, 0, 0, 0, 0], 32)
            || within([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48)
            || within([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28))
    {
        Some("an IETF protocol assignment (2001::/23)")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("a link-local address")
    } else if (s[0] & 0xffc0) == 0xfec0 {
        Some("a site-local address")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some("a private (unique local) address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if within([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16) {
        Some("a segment routing (5f00::/16) address")
    } else if (s[0] & 0xe000) != 0x2000 {
        Some("a reserved address (not global unicast, 2000::/3)")
    } else {
        None
    }
}

/// A URL host that must not be fetched from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "host {host} resolves to {ip}, {reason}; refused (set service.download.allow_private_addresses to allow)"
)]
pub struct ForbiddenAddress {
    pub host: String,
    pub ip: IpAddr,
    pub reason: &'static str,
}

/// Why a URL is not fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("unsupported scheme {0:?} (only http and https)")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error(transparent)]
    Forbidden(#[from] ForbiddenAddress),
}

/// Checks a URL before it is requested: scheme, and a literal IP host (which the resolver never sees).
pub fn check_url(url: &reqwest::Url, allow_private: bool) -> Result<(), UrlRefused> {
    match url.scheme() {
        "http" | "https" => {}
        s => return Err(UrlRefused::Scheme(s.to_owned())),
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err(UrlRefused::NoHost),
    };
    if allow_private {
        return Ok(());
    }
    match forbidden_reason(ip) {
        Some(reason) => Err(ForbiddenAddress {
            host: ip.to_string(),
            ip,
            reason,
        }
        .into()),
        None => Ok(()),
    }
}

/// A resolver that drops nothing but fails the lookup if any address is internal: a host
/// with one public and one private address is refused, rather than letting the connector pick.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: the connector puts the URL's port in.
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for a in &addrs {
                if let Some(reason) = forbidden_reason(a.ip()) {
                    return Err(Box::new(ForbiddenAddress {
                        host: host.clone(),
                        ip: a.ip(),
                        reason,
                    })
                        as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Finds why a URL was refused in an error's source chain: reqwest wraps the resolver's and
/// the redirect policy's errors.
pub fn find_refused(err: &(dyn std::error::Error + 'static)) -> Option<UrlRefused> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(f) = e.downcast_ref::<ForbiddenAddress>() {
            return Some(UrlRefused::Forbidden(f.clone()));
        }
        if let Some(r) = e.downcast_ref::<UrlRefused>() {
            return Some(r.clone());
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(s: &str) -> bool {
        forbidden_reason(s.parse().unwrap()).is_some()
    }

    #[test]
    fn classifies_addresses() {
        for s in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "fec0::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::10.0.0.1",
            // The IANA special-purpose registries.
            "198.18.0.1",
            "198.19.255.255",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.200",
            "192.0.0.8",
            "192.88.99.1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "64:ff9b:1::a00:1",
            "2001:2::1",
            "5f00::1",
            "4000::1",
            // 6to4 and Teredo forms of internal IPv4 addresses.
            "2002:7f00:1::",
            "2002:a00:1::1",
            "2002:a9fe:a9fe::1",
            // Teredo: server 65.54.227.120, client 127.0.0.1 (inverted: 80ff:fffe).
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            // Teredo: server 10.0.0.1, client 8.8.8.8.
            "2001:0:a00:1:8000:63bf:f7f7:f7f7",
        ] {
            assert!(bad(s), "{s} should be refused");
        }
        for s in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "142.250.74.110",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "192.31.196.1",
            "192.175.48.1",
            "2002:808:808::1",
            // Teredo: server 65.54.227.120, client 8.8.8.8 (inverted: f7f7:f7f7).
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
            "2001:3::1",
            "2620:4f:8000::1",
        ] {
            assert!(!bad(s), "{s} should be allowed");
        }
    }

    #[test]
    fn checks_literal_hosts_and_schemes() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(check_url(&u("http://127.0.0.1:8000/x"), false).is_err());
        assert!(check_url(&u("http://[::1]/x"), false).is_err());
        assert!(check_url(&u("http://[::ffff:7f00:1]/x"), false).is_err());
        assert!(check_url(&u("http://127.0.0.1:8000/x"), true).is_ok());
        assert!(check_url(&u("https://example.com/x"), false).is_ok());
        assert!(check_url(&u("https://8.8.8.8/x"), false).is_ok());
        assert!(check_url(&u("file:///etc/passwd"), true).is_err());
        assert!(check_url(&u("ftp://example.com/x"), true).is_err());
    }

    #[tokio::test]
    async fn resolver_refuses_localhost() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let err = match GuardedResolver.resolve(name).await {
            Ok(_) => panic!("localhost resolved"),
            Err(e) => e,
        };
        assert!(
            matches!(find_refused(err.as_ref()), Some(UrlRefused::Forbidden(_))),
            "{err}"
        );
    }
}
