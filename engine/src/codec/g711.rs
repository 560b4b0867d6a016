//! G.711 µ-law (PCMU) and A-law (PCMA), table-driven. The tables are built at compile
//! time from the ITU-T G.191 reference algorithm (one's complement of negative input,
//! so −1 encodes to the same code word as 0's negative twin).

const fn ulaw_compress(x: i16) -> u8 {
    let mut absno: i32 = if x < 0 {
        ((!x) >> 2) as i32
    } else {
        (x >> 2) as i32
    };
    // G.191 clips at 0x1FDF; 0x1FDF + 0x21 overflows into a ninth segment, which the
    // reference maps to the largest code word, as does clipping one lower.
    if absno > 0x1fde {
        absno = 0x1fde;
    }
    absno += 0x21;
    let mut i = absno >> 6;
    let mut segno = 1;
    while i != 0 {
        segno += 1;
        i >>= 1;
    }
    let high = 0x08 - segno;
    let low = 0x0f - ((absno >> segno) & 0x0f);
    let mut out = (high << 4) | low;
    if x >= 0 {
        out |= 0x80;
    }
    out as u8
}

const fn ulaw_expand(code: u8) -> i16 {
    let sign: i32 = if code < 0x80 { -1 } else { 1 };
    let mantissa = !(code as i32);
    let exponent = (mantissa >> 4) & 0x07;
    let segment = exponent + 1;
    let mantissa = mantissa & 0x0f;
    let step = 4 << segment;
    (sign * ((0x80 << exponent) + step * mantissa + step / 2 - 4 * 33)) as i16
}

const fn alaw_compress(x: i16) -> u8 {
    let mut ix: i32 = if x < 0 {
        ((!x) >> 4) as i32
    } else {
        (x >> 4) as i32
    };
    if ix > 15 {
        let mut iexp = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            iexp += 1;
        }
        ix -= 16;
        ix += iexp << 4;
    }
    if x >= 0 {
        ix |= 0x80;
    }
    (ix ^ 0x55) as u8
}

const fn alaw_expand(code: u8) -> i16 {
    let ix = ((code ^ 0x55) & 0x7f) as i32;
    let iexp = ix >> 4;
    let mut mant = ix & 0x0f;
    if iexp > 0 {
        mant += 16;
    }
    mant = (mant << 4) + 0x08;
    if iexp > 1 {
        mant <<= iexp - 1;
    }
    (if code > 127 { mant } else { -mant }) as i16
}

/// µ-law encode table indexed by `(x >> 2) + 8192`.
static ULAW_ENC: [u8; 16384] = {
    let mut t = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        t[i] = ulaw_compress(((i as i32 - 8192) << 2) as i16);
        i += 1;
    }
    t
};
/// A-law encode table indexed by `(x >> 4) + 2048`.
static ALAW_ENC: [u8; 4096] = {
    let mut t = [0u8; 4096];
    let mut i = 0;
    while i < 4096 {
        t[i] = alaw_compress(((i as i32 - 2048) << 4) as i16);
        i += 1;
    }
    t
};
static ULAW_DEC: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_expand(i as u8);
        i += 1;
    }
    t
};
static ALAW_DEC: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_expand(i as u8);
        i += 1;
    }
    t
};

/// Encodes one linear sample to µ-law.
#[inline]
pub fn ulaw_encode(x: i16) -> u8 {
    ULAW_ENC[((x >> 2) as i32 + 8192) as usize]
}
/// Decodes one µ-law code word.
#[inline]
pub fn ulaw_decode(c: u8) -> i16 {
    ULAW_DEC[usize::from(c)]
}
/// Encodes one linear sample to A-law.
#[inline]
pub fn alaw_encode(x: i16) -> u8 {
    ALAW_ENC[((x >> 4) as i32 + 2048) as usize]
}
/// Decodes one A-law code word.
#[inline]
pub fn alaw_decode(c: u8) -> i16 {
    ALAW_DEC[usize::from(c)]
}

/// The µ-law code word for digital silence.
pub const ULAW_SILENCE: u8 = 0xff;
/// The A-law code word for digital silence.
pub const ALAW_SILENCE: u8 = 0xd5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_code_words_round_trip() {
        for c in 0..=255u8 {
            let back = ulaw_encode(ulaw_decode(c));
            if c == 0x7f {
                // µ-law has a negative zero: it decodes to 0, which encodes as 0xFF.
                assert_eq!(back, 0xff);
            } else {
                assert_eq!(back, c, "µ-law {c:#04x}");
            }
            assert_eq!(alaw_encode(alaw_decode(c)), c, "A-law {c:#04x}");
        }
    }

    #[test]
    fn table_matches_reference_for_every_input() {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(ulaw_encode(x), ulaw_compress(x), "µ-law {x}");
            assert_eq!(alaw_encode(x), alaw_compress(x), "A-law {x}");
        }
    }

    #[test]
    fn itu_code_words() {
        // (pcm, µ-law, A-law): cross-checked against an independent implementation (CPython's
        // audioop), except the µ-law of −1 and −100, where the G.191 reference takes the one's
        // complement of negative input (0x7F, 0x73) and audioop's Sun code does not (0x7E, 0x72).
        let cases: [(i16, u8, u8); 10] = [
            (0, 0xff, 0xd5),
            (-1, 0x7f, 0x55),
            (32767, 0x80, 0xaa),
            (-32768, 0x00, 0x2a),
            (1000, 0xce, 0xfa),
            (-1000, 0x4e, 0x7a),
            (8031, 0xa0, 0x8a),
            (100, 0xf2, 0xd3),
            (-100, 0x73, 0x53),
            (4096, 0xaf, 0x85),
        ];
        for (pcm, mu, a) in cases {
            assert_eq!(ulaw_encode(pcm), mu, "µ-law of {pcm}");
            assert_eq!(alaw_encode(pcm), a, "A-law of {pcm}");
        }
        // Decoder end points: ITU maxima 8031·4 = 32124 (µ-law) and 4032·8 = 32256 (A-law).
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(alaw_decode(0xaa), 32256);
        assert_eq!(alaw_decode(0xd5), 8);
        assert_eq!(ulaw_decode(ULAW_SILENCE), 0);
    }

    #[test]
    fn quantisation_error_bounded() {
        for x in (i16::MIN..=i16::MAX).step_by(7) {
            let e = (i32::from(ulaw_decode(ulaw_encode(x))) - i32::from(x)).abs();
            let a = (i32::from(alaw_decode(alaw_encode(x))) - i32::from(x)).abs();
            let mag = i32::from(x).abs().max(64);
            assert!(e <= mag / 16 + 8, "µ-law {x} err {e}");
            assert!(a <= mag / 16 + 16, "A-law {x} err {a}");
        }
    }
}
