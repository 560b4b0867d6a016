//! Behaviour tests: replay, ROC rollover, MKI, key lifetime, KDR, and a long lossy run
//! in virtual time.

use super::kdf;
use super::{ReplayKind, SrtpContext, SrtpError, SrtpOptions, SrtpSuite};
use aes::cipher::KeyInit;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const KEY: [u8; 32] = [0x11; 32];
const SALT: [u8; 14] = [0x22; 14];
const ALL: [SrtpSuite; 5] = SrtpSuite::STRONGEST_FIRST;

fn pair(suite: SrtpSuite, mki: Option<&[u8]>) -> (SrtpContext, SrtpContext) {
    let k = &KEY[..suite.key_len()];
    let s = &SALT[..suite.salt_len()];
    (
        SrtpContext::new(suite, k, s, mki).unwrap(),
        SrtpContext::new(suite, k, s, mki).unwrap(),
    )
}

/// An RTP packet with CSRCs and a header extension so header parsing is exercised.
fn rtp(seq: u16, payload_len: usize) -> Vec<u8> {
    let mut p = vec![
        0x91,
        0x00,
        (seq >> 8) as u8,
        seq as u8,
        0,
        0,
        0,
        160,
        0xde,
        0xad,
        0xbe,
        0xef,
    ];
    p.extend_from_slice(&[0, 0, 0, 7]); // CSRC
    p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]); // one-byte extension, 1 word
    p.extend((0..payload_len).map(|i| (i as u8) ^ (seq as u8)));
    p
}

fn rtcp(n: u8) -> Vec<u8> {
    let mut p = vec![0x80, 0xc8, 0x00, 0x06, 0xde, 0xad, 0xbe, 0xef];
    p.extend((0..20).map(|i| i ^ n));
    p.extend_from_slice(&[
        0x81, 0xca, 0x00, 0x02, 0xde, 0xad, 0xbe, 0xef, 1, 2, b'v', b'g',
    ]);
    p
}

fn protect(tx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; plain.len() + tx.rtp_overhead()];
    buf[..plain.len()].copy_from_slice(plain);
    let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
    assert_eq!(n, buf.len());
    assert_ne!(&buf[..plain.len()], plain, "payload must be encrypted");
    buf
}

fn unprotect(rx: &mut SrtpContext, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut buf = packet.to_vec();
    let n = rx.unprotect_rtp(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

#[test]
fn round_trip_every_suite_with_and_without_mki() {
    for suite in ALL {
        for mki in [None, Some(&[9u8, 8, 7, 6][..])] {
            let (mut tx, mut rx) = pair(suite, mki);
            for seq in 100..110u16 {
                let p = rtp(seq, 160);
                let s = protect(&mut tx, &p);
                assert_eq!(
                    s.len(),
                    p.len() + suite.rtp_tag_len() + mki.map_or(0, <[u8]>::len)
                );
                assert_eq!(unprotect(&mut rx, &s).unwrap(), p, "{suite} mki={mki:?}");
            }
            for n in 0..5 {
                let p = rtcp(n);
                let mut buf = vec![0u8; p.len() + tx.rtcp_overhead()];
                buf[..p.len()].copy_from_slice(&p);
                let len = tx.protect_rtcp(&mut buf, p.len()).unwrap();
                assert_eq!(len, buf.len());
                assert_eq!(rx.unprotect_rtcp(&mut buf).unwrap(), p.len());
                assert_eq!(&buf[..p.len()], &p[..]);
            }
        }
    }
}

#[test]
fn wrong_or_missing_mki_is_refused() {
    let (mut tx, _) = pair(SrtpSuite::AesCm128HmacSha1_80, Some(&[1, 2, 3, 4]));
    let mut other = SrtpContext::new(
        SrtpSuite::AesCm128HmacSha1_80,
        &KEY[..16],
        &SALT,
        Some(&[1, 2, 3, 5]),
    )
    .unwrap();
    let s = protect(&mut tx, &rtp(1, 40));
    assert_eq!(unprotect(&mut other, &s), Err(SrtpError::UnknownMki));
    let mut no_mki =
        SrtpContext::new(SrtpSuite::AesCm128HmacSha1_80, &KEY[..16], &SALT, None).unwrap();
    assert_eq!(
        unprotect(&mut no_mki, &s),
        Err(SrtpError::AuthenticationFailed)
    );
}

#[test]
fn replay_duplicate_too_old_and_out_of_order() {
    for suite in ALL {
        let (mut tx, mut rx) = pair(suite, None);
        let packets: Vec<Vec<u8>> = (0..300u16).map(|s| protect(&mut tx, &rtp(s, 20))).collect();
        assert!(unprotect(&mut rx, &packets[200]).is_ok());
        // Out of order inside the window: accepted once, then a duplicate.
        for i in [199, 150, 74, 201, 180] {
            assert!(unprotect(&mut rx, &packets[i]).is_ok(), "{suite} index {i}");
        }
        for i in [199, 200, 74, 201] {
            assert_eq!(
                unprotect(&mut rx, &packets[i]),
                Err(SrtpError::Replay {
                    index: i as u64,
                    kind: ReplayKind::Duplicate
                })
            );
        }
        // 74 = 201 - 127 was the oldest inside the window; 72 is outside it.
        assert_eq!(
            unprotect(&mut rx, &packets[72]),
            Err(SrtpError::Replay {
                index: 72,
                kind: ReplayKind::TooOld
            })
        );
        // A replayed packet that fails authentication must not move the window.
        let mut forged = packets[250].clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert_eq!(
            unprotect(&mut rx, &forged),
            Err(SrtpError::AuthenticationFailed)
        );
        assert!(unprotect(&mut rx, &packets[250]).is_ok());
        assert!(
            unprotect(&mut rx, &packets[180 - 50]).is_ok(),
            "130 is inside 250-128"
        );
    }
}

#[test]
fn srtcp_replay() {
    let (mut tx, mut rx) = pair(SrtpSuite::AesCm128HmacSha1_80, None);
    let packets: Vec<Vec<u8>> = (0..200u8)
        .map(|n| {
            let p = rtcp(n);
            let mut buf = vec![0u8; p.len() + tx.rtcp_overhead()];
            buf[..p.len()].copy_from_slice(&p);
            let _ = tx.protect_rtcp(&mut buf, p.len()).unwrap();
            buf
        })
        .collect();
    let mut un = |i: usize| rx.unprotect_rtcp(&mut packets[i].clone());
    assert!(un(150).is_ok());
    assert!(un(100).is_ok());
    assert_eq!(
        un(100),
        Err(SrtpError::Replay {
            index: 100,
            kind: ReplayKind::Duplicate
        })
    );
    assert_eq!(
        un(150),
        Err(SrtpError::Replay {
            index: 150,
            kind: ReplayKind::Duplicate
        })
    );
    assert_eq!(
        un(10),
        Err(SrtpError::Replay {
            index: 10,
            kind: ReplayKind::TooOld
        })
    );
    assert!(un(199).is_ok());
}

#[test]
fn protect_refuses_to_reuse_an_index() {
    let (mut tx, _) = pair(SrtpSuite::AesCm128HmacSha1_80, None);
    let p = rtp(5, 20);
    let _ = protect(&mut tx, &p);
    let mut buf = p.clone();
    buf.resize(p.len() + 10, 0);
    assert_eq!(
        tx.protect_rtp(&mut buf, p.len()),
        Err(SrtpError::Replay {
            index: 5,
            kind: ReplayKind::Duplicate
        })
    );
}

#[test]
fn roc_rolls_over_at_65535() {
    for suite in ALL {
        let (mut tx, mut rx) = pair(suite, None);
        let seqs = [65530u16, 65533, 65535, 0, 1, 65534, 2, 3];
        let packets: Vec<Vec<u8>> = seqs
            .iter()
            .map(|&s| protect(&mut tx, &rtp(s, 30)))
            .collect();
        assert_eq!(tx.roc(), 1);
        for (p, &s) in packets.iter().zip(&seqs) {
            assert_eq!(
                unprotect(&mut rx, p).unwrap(),
                rtp(s, 30),
                "{suite} seq {s}"
            );
        }
        assert_eq!(rx.roc(), 1);
        // The same seq 0 packet protected with ROC 0 does not authenticate as ROC 1.
        let (mut tx0, _) = pair(suite, None);
        let stale = protect(&mut tx0, &rtp(4, 30));
        assert_eq!(
            unprotect(&mut rx, &stale),
            Err(SrtpError::AuthenticationFailed)
        );
    }
}

/// A re-key replaces the peer's context. A sender that keeps its index across the new
/// key (RFC 3711; libsrtp's `srtp_update`) is read with the rollover counter where the
/// old context left off; one that starts afresh at ROC 0 is read too; the first packet
/// that authenticates settles which, for every suite (a failed GCM guess leaves the
/// packet as it was for the next).
#[test]
fn a_rekeyed_context_reads_a_sender_that_continues_its_index_or_starts_afresh() {
    const NEW_KEY: [u8; 32] = [0x33; 32];
    for suite in ALL {
        let k = &NEW_KEY[..suite.key_len()];
        let s = &SALT[..suite.salt_len()];
        let rekeyed = || SrtpContext::new(suite, k, s, None).unwrap();
        // The old key's stream has wrapped once: ROC 1, highest seq 5.
        let (mut tx_old, mut rx_old) = pair(suite, None);
        for seq in [65534u16, 65535, 0, 5] {
            unprotect(&mut rx_old, &protect(&mut tx_old, &rtp(seq, 30))).unwrap();
        }
        assert_eq!(rx_old.roc(), 1);

        // Continuing: the new key protects seq 6 onward with ROC 1.
        let mut tx_cont = rekeyed();
        tx_cont.set_roc(1, 5);
        let cont: Vec<Vec<u8>> = (6..9).map(|q| protect(&mut tx_cont, &rtp(q, 30))).collect();
        let mut plain = rekeyed();
        assert_eq!(
            unprotect(&mut plain, &cont[0]),
            Err(SrtpError::AuthenticationFailed),
            "{suite}: without the carried ROC a continuing sender fails"
        );
        // A new-key receiver continued from `rx_old` that reads `packets` (seq from
        // `first` on), each as sent.
        let continued_reader = |packets: &[Vec<u8>], first: u16| {
            let mut rx = rekeyed();
            rx.continue_from(&rx_old);
            for (p, q) in packets.iter().zip(first..) {
                assert_eq!(
                    unprotect(&mut rx, p).unwrap(),
                    rtp(q, 30),
                    "{suite} seq {q}"
                );
            }
            rx
        };
        assert_eq!(continued_reader(&cont, 6).roc(), 1);

        // Afresh: the new key's stream starts at ROC 0 (seq 7 is past 5, so the carried
        // guess is ROC 1 and fails first).
        let mut tx_fresh = rekeyed();
        let fresh: Vec<Vec<u8>> = (7..10)
            .map(|q| protect(&mut tx_fresh, &rtp(q, 30)))
            .collect();
        let mut rx = continued_reader(&fresh, 7);
        assert_eq!(rx.roc(), 0);
        // Settled: the continuing stream's packets no longer pass.
        let late = protect(&mut tx_cont, &rtp(12, 30));
        assert_eq!(
            unprotect(&mut rx, &late),
            Err(SrtpError::AuthenticationFailed)
        );

        // Across the wrap: the old stream stopped at ROC 0 seq 65530, the new key's
        // continuing stream wraps to ROC 1 before its first packet arrives.
        let (mut tx_old, mut rx_old) = pair(suite, None);
        unprotect(&mut rx_old, &protect(&mut tx_old, &rtp(65530, 30))).unwrap();
        let mut tx_cont = rekeyed();
        tx_cont.set_roc(0, 65530);
        let _lost = protect(&mut tx_cont, &rtp(65535, 30));
        let after_wrap = protect(&mut tx_cont, &rtp(3, 30));
        let mut rx = rekeyed();
        rx.continue_from(&rx_old);
        assert_eq!(unprotect(&mut rx, &after_wrap).unwrap(), rtp(3, 30));
        assert_eq!(rx.roc(), 1);

        // Re-keyed twice before any packet: the guess still comes from the last stream
        // that was heard.
        let mut twice = rekeyed();
        twice.continue_from(&rx_old);
        let mut rx = rekeyed();
        rx.continue_from(&twice);
        let after_wrap = protect(&mut tx_cont, &rtp(4, 30));
        assert_eq!(unprotect(&mut rx, &after_wrap).unwrap(), rtp(4, 30));

        // The same key back in a new context (a trunk returning to an earlier key): a
        // packet already heard under it, at ROC 1, is not the continued stream — only
        // indices above the old highest are — so it is not taken again.
        let (mut tx_old, mut rx_old) = pair(suite, None);
        tx_old.set_roc(0, 65530);
        let heard: Vec<Vec<u8>> = [65535u16, 3, 9]
            .iter()
            .map(|&q| protect(&mut tx_old, &rtp(q, 30)))
            .collect();
        for p in &heard {
            unprotect(&mut rx_old, p).unwrap();
        }
        let (_, mut same_key) = pair(suite, None);
        same_key.continue_from(&rx_old);
        assert_eq!(
            unprotect(&mut same_key, &heard[1]),
            Err(SrtpError::AuthenticationFailed),
            "{suite}: a replay of seq 3 at ROC 1"
        );
        let next = protect(&mut tx_old, &rtp(10, 30));
        assert_eq!(unprotect(&mut same_key, &next).unwrap(), rtp(10, 30));
    }
}

#[test]
fn key_lifetime_is_enforced() {
    let options = SrtpOptions {
        key_lifetime: Some(16),
        ..SrtpOptions::default()
    };
    let suite = SrtpSuite::AesCm128HmacSha1_32;
    let mut tx = SrtpContext::with_options(suite, &KEY[..16], &SALT, &options).unwrap();
    let mut rx = SrtpContext::with_options(suite, &KEY[..16], &SALT, &options).unwrap();
    let packets: Vec<Vec<u8>> = (0..16u16).map(|s| protect(&mut tx, &rtp(s, 10))).collect();
    let mut buf = rtp(16, 10);
    let plain_len = buf.len();
    buf.resize(plain_len + 4, 0);
    assert_eq!(
        tx.protect_rtp(&mut buf, plain_len),
        Err(SrtpError::KeyLifetimeExhausted)
    );
    for p in &packets {
        assert!(unprotect(&mut rx, p).is_ok());
    }
    let mut tx2 = SrtpContext::new(suite, &KEY[..16], &SALT, None).unwrap();
    tx2.set_roc(0, 15);
    let extra = protect(&mut tx2, &rtp(16, 10));
    assert_eq!(
        unprotect(&mut rx, &extra),
        Err(SrtpError::KeyLifetimeExhausted)
    );

    // 2^48: once ROC 2^32-1 and seq 65535 are used, protect refuses to wrap the index.
    let mut tx = SrtpContext::new(suite, &KEY[..16], &SALT, None).unwrap();
    tx.set_roc(u32::MAX, 65534);
    let _ = protect(&mut tx, &rtp(65535, 10));
    let mut buf = rtp(0, 10);
    let plain_len = buf.len();
    buf.resize(plain_len + 4, 0);
    assert_eq!(
        tx.protect_rtp(&mut buf, plain_len),
        Err(SrtpError::KeyLifetimeExhausted)
    );

    // 2^31 SRTCP packets.
    let mut tx = SrtpContext::new(suite, &KEY[..16], &SALT, None).unwrap();
    let p = rtcp(0);
    let mut buf = vec![0u8; p.len() + tx.rtcp_overhead()];
    buf[..p.len()].copy_from_slice(&p);
    tx.set_next_srtcp_index((1 << 31) - 1);
    assert!(tx.protect_rtcp(&mut buf, p.len()).is_ok());
    buf[..p.len()].copy_from_slice(&p);
    assert_eq!(
        tx.protect_rtcp(&mut buf, p.len()),
        Err(SrtpError::KeyLifetimeExhausted)
    );
}

#[test]
fn nonzero_kdr_rekeys_at_multiples_of_the_rate() {
    let suite = SrtpSuite::AesCm128HmacSha1_80;
    let options = SrtpOptions {
        key_derivation_rate: 16,
        ..SrtpOptions::default()
    };
    let mut tx = SrtpContext::with_options(suite, &KEY[..16], &SALT, &options).unwrap();
    let packets: Vec<Vec<u8>> = (0..40u16).map(|s| protect(&mut tx, &rtp(s, 32))).collect();

    // Independent check: packet 20 (r = 1) equals a context holding keys derived at r = 1.
    let prf = aes::Aes128Enc::new_from_slice(&KEY[..16]).unwrap();
    let (mut k, mut s, mut a) = ([0u8; 16], [0u8; 14], [0u8; 20]);
    kdf::derive(&prf, &SALT, kdf::LABEL_RTP_KEY, 1, &mut k);
    kdf::derive(&prf, &SALT, kdf::LABEL_RTP_SALT, 1, &mut s);
    kdf::derive(&prf, &SALT, kdf::LABEL_RTP_AUTH, 1, &mut a);
    let mut r1 = SrtpContext::new(suite, &KEY[..16], &SALT, None).unwrap();
    r1.set_session_keys(false, &k, &s, &a);
    assert_eq!(protect(&mut r1, &rtp(20, 32)), packets[20]);
    // ... and packet 5 (r = 0) equals the kdr-0 context, packet 20 does not.
    let (mut kdr0, _) = pair(suite, None);
    assert_eq!(protect(&mut kdr0, &rtp(5, 32)), packets[5]);
    assert_ne!(protect(&mut kdr0, &rtp(20, 32)), packets[20]);

    // The receiver follows, also out of order across an r boundary.
    let mut rx = SrtpContext::with_options(suite, &KEY[..16], &SALT, &options).unwrap();
    for i in [0, 1, 17, 15, 33, 16, 31, 2] {
        assert_eq!(
            unprotect(&mut rx, &packets[i]).unwrap(),
            rtp(i as u16, 32),
            "packet {i}"
        );
    }
    assert!(SrtpContext::with_options(
        suite,
        &KEY[..16],
        &SALT,
        &SrtpOptions {
            key_derivation_rate: 3,
            ..options
        }
    )
    .is_err());
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    for suite in ALL {
        let (mut tx, mut rx) = pair(suite, Some(&[1]));
        for len in 0..40 {
            let mut b = vec![0x80u8; len];
            assert!(rx.unprotect_rtp(&mut b).is_err());
            let mut b = vec![0x80u8; len];
            assert!(rx.unprotect_rtcp(&mut b).is_err());
        }
        let p = rtp(1, 10);
        let mut small = p.clone();
        assert!(matches!(
            tx.protect_rtp(&mut small, p.len()),
            Err(SrtpError::BufferTooSmall { .. })
        ));
        assert!(matches!(
            tx.protect_rtp(&mut small, p.len() + 1),
            Err(SrtpError::LengthOutOfRange { .. })
        ));
        let mut v1 = p.clone();
        v1[0] = 0x40;
        v1.resize(p.len() + 40, 0);
        assert_eq!(tx.protect_rtp(&mut v1, p.len()), Err(SrtpError::Malformed));
        // Extension length pointing past the end.
        let mut ext = p.clone();
        ext[18] = 0xff;
        ext.resize(p.len() + 40, 0);
        assert_eq!(tx.protect_rtp(&mut ext, p.len()), Err(SrtpError::TooShort));
    }
    assert!(matches!(
        SrtpContext::new(SrtpSuite::AeadAes128Gcm, &KEY[..16], &SALT, None),
        Err(SrtpError::InvalidSaltLength {
            expected: 12,
            got: 14
        })
    ));
    assert!(
        SrtpContext::new(SrtpSuite::AesCm128HmacSha1_80, &KEY[..16], &SALT, Some(&[])).is_err()
    );
}

/// 200,000 packets (three ROC wraps) at 20 ms each in virtual time, through a channel
/// with 8% random loss, bursts of loss up to 1,000 packets, reordering within 20
/// packets and 2% duplicates. Every delivered original must come out intact exactly
/// once; every duplicate must be refused as a replay.
#[test]
fn long_random_loss_run_in_virtual_time() {
    for suite in [SrtpSuite::AesCm128HmacSha1_80, SrtpSuite::AeadAes128Gcm] {
        let mut rng = StdRng::seed_from_u64(0x5eed_0003);
        let (mut tx, mut rx) = pair(suite, None);
        let mut in_flight: Vec<(u64, u32, Vec<u8>)> = Vec::new(); // (arrival ms, n, packet)
        let (mut delivered, mut duplicates_refused, mut accepted) = (0u32, 0u32, 0u32);
        let mut seen = vec![false; 200_000];
        let mut burst = 0u32;
        let total = 200_000u32;
        for n in 0..total {
            let now_ms = u64::from(n) * 20;
            let seq = (n.wrapping_add(60_000) & 0xffff) as u16;
            let packet = protect(&mut tx, &rtp(seq, 20 + (n % 7) as usize));
            if burst == 0 && rng.random_ratio(1, 20_000) {
                burst = rng.random_range(1..1000);
            }
            let lost = if burst > 0 {
                burst -= 1;
                true
            } else {
                rng.random_ratio(8, 100)
            };
            if !lost {
                let delay = rng.random_range(0..400);
                if rng.random_ratio(2, 100) {
                    in_flight.push((now_ms + delay + 100, n, packet.clone()));
                }
                in_flight.push((now_ms + delay, n, packet));
            }
            // Deliver everything due by `now_ms`, in arrival order.
            in_flight.sort_by_key(|(t, _, _)| std::cmp::Reverse(*t));
            while in_flight.last().is_some_and(|(t, _, _)| *t <= now_ms) {
                let Some((_, k, p)) = in_flight.pop() else {
                    break;
                };
                delivered += 1;
                match unprotect(&mut rx, &p) {
                    Ok(plain) => {
                        let kseq = (k.wrapping_add(60_000) & 0xffff) as u16;
                        assert_eq!(plain, rtp(kseq, 20 + (k % 7) as usize));
                        assert!(!seen[k as usize], "packet {k} accepted twice");
                        seen[k as usize] = true;
                        accepted += 1;
                    }
                    Err(SrtpError::Replay { .. }) => {
                        assert!(
                            seen[k as usize] || k + 128 < n,
                            "packet {k} wrongly refused at {n}"
                        );
                        duplicates_refused += 1;
                    }
                    Err(e) => panic!("packet {k}: {e}"),
                }
            }
        }
        assert_eq!(tx.roc(), 3);
        assert!(rx.roc() >= 2, "receiver followed the ROC through the wraps");
        assert!(accepted > 150_000, "{suite}: accepted {accepted}");
        assert!(
            duplicates_refused > 2_000,
            "{suite}: refused {duplicates_refused}"
        );
        assert_eq!(delivered, accepted + duplicates_refused);
    }
}

/// The fuzz seed corpus (the published vectors, behind every suite/MKI selector) fed
/// through the fuzz entry points: none may authenticate against the fuzz context's key.
#[test]
fn fuzz_entry_points_refuse_the_vectors() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut seen = 0;
    for (target, f) in [
        ("srtp_unprotect", super::fuzz::unprotect_rtp as fn(&[u8])),
        ("srtcp_unprotect", super::fuzz::unprotect_rtcp as fn(&[u8])),
    ] {
        for entry in std::fs::read_dir(dir.join(target)).expect("seed corpus") {
            let data = std::fs::read(entry.expect("entry").path()).expect("seed");
            for selector in 0..=255u8 {
                let mut d = data.clone();
                d[0] = selector;
                f(&d);
            }
            seen += 1;
        }
    }
    assert!(seen >= 20, "seed corpus present ({seen} files)");
}

#[test]
fn context_is_small_enough_for_thousands_of_sessions() {
    let size = std::mem::size_of::<SrtpContext>();
    assert!(size < 4096, "SrtpContext is {size} bytes");
    eprintln!("size_of::<SrtpContext>() = {size}");
}
