//! `;name[=value]` parameter lists of URIs and header values, read in place.

use super::error::ParseError;

/// True for linear white space octets (folded lines keep their CR LF in the value).
#[inline]
pub(crate) fn is_lws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

const fn token_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        c += 1;
    }
    t
}

static TOKEN: [bool; 256] = token_table();

/// RFC 3261 `token` characters.
#[inline]
pub(crate) fn is_token(c: u8) -> bool {
    TOKEN[c as usize]
}

/// Skips linear white space from `i`.
pub(crate) fn skip_lws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_lws(b[i]) {
        i += 1;
    }
    i
}

/// Trims linear white space on both sides.
pub(crate) fn trim_lws(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii() && is_lws(c as u8))
}

/// End (exclusive) of a quoted string starting at `i` (which holds `"`).
pub(crate) fn quoted_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// A validated parameter list, such as `;tag=1;lr` or ` ; branch = z9hG4bK1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a str,
}

type Item<'a> = (&'a str, Option<&'a str>);

/// Reads one parameter at `i` (at a `;` or LWS before it); `Ok(None)` at the end.
fn next_param(s: &str, i: usize) -> Result<Option<(Item<'_>, usize)>, usize> {
    let b = s.as_bytes();
    let mut i = skip_lws(b, i);
    if i >= b.len() {
        return Ok(None);
    }
    if b[i] != b';' {
        return Err(i);
    }
    i = skip_lws(b, i + 1);
    let ns = i;
    while i < b.len() && is_token(b[i]) {
        i += 1;
    }
    if i == ns {
        return Err(i);
    }
    let name = &s[ns..i];
    i = skip_lws(b, i);
    if i < b.len() && b[i] == b'=' {
        i = skip_lws(b, i + 1);
        let vs = i;
        if i < b.len() && b[i] == b'"' {
            let end = quoted_end(b, i).ok_or(i)?;
            return Ok(Some(((name, Some(&s[vs + 1..end - 1])), end)));
        }
        while i < b.len() && !is_lws(b[i]) && !matches!(b[i], b';' | b',' | b'"' | b'<' | b'>') {
            i += 1;
        }
        if i == vs {
            return Err(i);
        }
        return Ok(Some(((name, Some(&s[vs..i])), i)));
    }
    Ok(Some(((name, None), i)))
}

impl<'a> Params<'a> {
    /// An empty list.
    pub const fn empty() -> Self {
        Params { raw: "" }
    }

    /// Validates `raw` (text starting at the first `;`, LWS allowed).
    pub fn parse(raw: &'a str) -> Result<Self, ParseError> {
        let mut i = 0;
        let mut n = 0;
        loop {
            match next_param(raw, i) {
                Ok(None) => return Ok(Params { raw }),
                Ok(Some((_, j))) => i = j,
                Err(at) => return Err(ParseError::Uri { at }),
            }
            n += 1;
            if n > 256 {
                return Err(ParseError::TooLarge { at: i });
            }
        }
    }

    /// The list as written.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// Iterates (name, value) pairs; quoted values come without their quotes.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter {
            raw: self.raw,
            pos: 0,
        }
    }

    /// Value of the first parameter named `name` (case-insensitive): `Some(None)` for a
    /// flag without value.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// True when no parameter is present.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// Iterator over a [`Params`] list.
#[derive(Debug, Clone)]
pub struct ParamIter<'a> {
    raw: &'a str,
    pos: usize,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = (&'a str, Option<&'a str>);
    fn next(&mut self) -> Option<Self::Item> {
        match next_param(self.raw, self.pos) {
            Ok(Some((item, j))) => {
                self.pos = j;
                Some(item)
            }
            _ => None,
        }
    }
}

/// Splits a comma-separated header value at top-level commas (outside quotes and
/// angle brackets). Empty elements are yielded (callers reject them).
pub(crate) fn split_commas(s: &str) -> Result<Vec<(usize, &str)>, usize> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut angle = false;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = quoted_end(b, i).ok_or(i)?;
                continue;
            }
            b'<' => angle = true,
            b'>' => angle = false,
            b',' if !angle => {
                out.push((start, &s[start..i]));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push((start, &s[start..]));
    Ok(out)
}
