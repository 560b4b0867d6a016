//! Conversions between `SocketAddr` and the C socket address structures.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Writes `addr` into `storage`; returns the length to pass to the kernel.
pub(crate) fn to_storage(
    addr: SocketAddr,
    storage: &mut libc::sockaddr_storage,
) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            let sin = unsafe {
                &mut *(storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            };
            sin.sin_zero = [0; 8];
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Reads a socket address from raw bytes as the kernel wrote them (`sockaddr_in` or
/// `sockaddr_in6`, possibly zero-padded). `None` for other families or short input.
pub(crate) fn from_bytes(raw: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes([*raw.first()?, *raw.get(1)?]);
    if i32::from(family) == libc::AF_INET {
        let port = u16::from_be_bytes([*raw.get(2)?, *raw.get(3)?]);
        let ip = Ipv4Addr::new(*raw.get(4)?, *raw.get(5)?, *raw.get(6)?, *raw.get(7)?);
        Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
    } else if i32::from(family) == libc::AF_INET6 {
        let port = u16::from_be_bytes([*raw.get(2)?, *raw.get(3)?]);
        let flow = u32::from_ne_bytes(raw.get(4..8)?.try_into().ok()?);
        let octets: [u8; 16] = raw.get(8..24)?.try_into().ok()?;
        let scope = u32::from_ne_bytes(raw.get(24..28)?.try_into().ok()?);
        Some(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(octets),
            port,
            flow,
            scope,
        )))
    } else {
        None
    }
}

/// Size of the name field a receive reserves (big enough for IPv6).
pub(crate) const NAME_LEN: usize = std::mem::size_of::<libc::sockaddr_in6>();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_v4_and_v6() {
        for addr in [
            "127.0.0.1:30000".parse::<SocketAddr>().ok(),
            "[::1]:5004".parse::<SocketAddr>().ok(),
        ]
        .into_iter()
        .flatten()
        {
            // SAFETY: all-zero is a valid sockaddr_storage.
            let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let len = to_storage(addr, &mut st) as usize;
            // SAFETY: `st` is a live sockaddr_storage of at least `len` bytes.
            let bytes = unsafe {
                std::slice::from_raw_parts((&st as *const libc::sockaddr_storage).cast::<u8>(), len)
            };
            assert_eq!(from_bytes(bytes), Some(addr));
        }
        assert_eq!(from_bytes(&[0, 0, 1]), None);
        assert_eq!(from_bytes(&[]), None);
    }
}
