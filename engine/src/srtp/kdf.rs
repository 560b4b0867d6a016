//! AES counter mode and the AES-CM key derivation function (RFC 3711 §4.1.1, §4.3).

use aes::cipher::{
    consts::U16, BlockCipherEncrypt, BlockSizeUser, InnerIvInit, StreamCipher,
    StreamCipherCoreWrapper,
};

/// SRTP encryption key label.
pub(crate) const LABEL_RTP_KEY: u8 = 0;
/// SRTP authentication key label.
pub(crate) const LABEL_RTP_AUTH: u8 = 1;
/// SRTP salt label.
pub(crate) const LABEL_RTP_SALT: u8 = 2;
/// SRTCP encryption key label.
pub(crate) const LABEL_RTCP_KEY: u8 = 3;
/// SRTCP authentication key label.
pub(crate) const LABEL_RTCP_AUTH: u8 = 4;
/// SRTCP salt label.
pub(crate) const LABEL_RTCP_SALT: u8 = 5;

/// XORs the AES-CTR keystream starting at counter block `iv` into `data`, re-using the
/// caller's expanded key (no key schedule per packet).
#[inline]
pub(crate) fn ctr_xor<C>(cipher: &C, iv: &[u8; 16], data: &mut [u8])
where
    C: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>,
{
    let core = ctr::CtrCore::<&C, ctr::flavors::Ctr128BE>::inner_iv_init(cipher, &(*iv).into());
    StreamCipherCoreWrapper::from_core(core).apply_keystream(data);
}

/// Derives `out.len()` bytes for `label` at `r = index DIV kdr` with the AES-CM PRF keyed
/// by the master key (`prf`). `master_salt` is 14 bytes (AES-CM) or 12 bytes (GCM,
/// zero-padded on the right as libsrtp does).
pub(crate) fn derive<C>(prf: &C, master_salt: &[u8], label: u8, r: u64, out: &mut [u8])
where
    C: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>,
{
    let mut iv = [0u8; 16];
    let n = master_salt.len().min(14);
    iv[..n].copy_from_slice(&master_salt[..n]);
    iv[7] ^= label;
    let r = r.to_be_bytes();
    for (dst, src) in iv[8..14].iter_mut().zip(&r[2..8]) {
        *dst ^= src;
    }
    out.fill(0);
    ctr_xor(prf, &iv, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::KeyInit;

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s.replace([' ', '\n'], "")).expect("hex")
    }

    // RFC 6188 §7.2 / §7.4 (srtp-vectors.md §4b, §4c): the AES-256 and AES-192 PRFs.
    #[test]
    fn rfc6188_kdf_aes256_and_aes192() {
        let cases: [(&str, &str, &str, &str, &str); 2] = [
            (
                "f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6",
                "3b04803de51ee7c96423ab5b78d2",
                "5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4",
                "fa31791685ca444a9e07c6c64e93",
                "fd9c32d39ed5fbb5a9dc96b30818454d1313dc05",
            ),
            (
                "73edc66c4fa15776fb57f9505c17136550ffda71f3e8e5f1",
                "c8522f3acd4ce86d5add78edbb11",
                "31874736a8f1143870c26e4857d8a5b2c4a354407faadabb",
                "2372b82d639b6d8503a47adc0a6c",
                "355b10973cd95b9eacf4061c7e1a7151e7cfbfcb",
            ),
        ];
        for (mk, ms, ck, cs, ak) in cases {
            let (mk, ms) = (hex(mk), hex(ms));
            let run = |label: u8, len: usize| {
                let mut out = vec![0u8; len];
                if mk.len() == 32 {
                    derive(
                        &aes::Aes256Enc::new_from_slice(&mk).unwrap(),
                        &ms,
                        label,
                        0,
                        &mut out,
                    );
                } else {
                    derive(
                        &aes::Aes192Enc::new_from_slice(&mk).unwrap(),
                        &ms,
                        label,
                        0,
                        &mut out,
                    );
                }
                out
            };
            assert_eq!(run(LABEL_RTP_KEY, mk.len()), hex(ck));
            assert_eq!(run(LABEL_RTP_SALT, 14), hex(cs));
            assert_eq!(run(LABEL_RTP_AUTH, 20), hex(ak));
            // Tampered twin: a flipped master-salt bit changes every output.
            let mut ms2 = ms.clone();
            ms2[0] ^= 1;
            let mut out = vec![0u8; 20];
            if mk.len() == 32 {
                derive(
                    &aes::Aes256Enc::new_from_slice(&mk).unwrap(),
                    &ms2,
                    LABEL_RTP_AUTH,
                    0,
                    &mut out,
                );
            } else {
                derive(
                    &aes::Aes192Enc::new_from_slice(&mk).unwrap(),
                    &ms2,
                    LABEL_RTP_AUTH,
                    0,
                    &mut out,
                );
            }
            assert_ne!(out, hex(ak));
        }
    }

    // RFC 6188 §7.1 (srtp-vectors.md §4a): AES-256-CM keystream.
    #[test]
    fn rfc6188_aes256_keystream() {
        let key = hex("57f82fe3613fd170a85ec93c40b1f0922ec4cb0dc025b58272147cc438944a98");
        let aes = aes::Aes256Enc::new_from_slice(&key).unwrap();
        let iv: [u8; 16] = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfd0000").try_into().unwrap();
        let mut ks = [0u8; 48];
        ctr_xor(&aes, &iv, &mut ks);
        let want = hex(
            "92bdd28a93c3f52511c677d08b5515a49da71b2378a854f67050756ded165bac\
             63c4868b7096d88421b563b8c94c9a31",
        );
        assert_eq!(ks.as_slice(), want.as_slice());
        let mut iv2 = iv;
        iv2[13] ^= 1;
        let mut ks2 = [0u8; 48];
        ctr_xor(&aes, &iv2, &mut ks2);
        assert_ne!(ks2.as_slice(), want.as_slice());
    }
}
