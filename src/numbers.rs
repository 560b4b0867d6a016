//! Phone numbers the gateway answers: E.164 validation and the CSV import format.
//!
//! Validation rule (`parse_e164`):
//! 1. The text must start with `+` and contain only digits, spaces, `-` and `.` after it
//!    (so `+1 958 555 0123` is accepted; `(958)`, letters and extensions are rejected
//!    outright, as the seed says).
//! 2. The `phonenumber` crate (libphonenumber metadata) parses it; its E.164 form is stored.
//! 3. The number is accepted when libphonenumber calls it valid, **or** when its country
//!    code exists and its national number has a length that country allows. The second
//!    arm exists because fictional-range numbers such as the demo number
//!    `+19585550123` (area code 958 is unassigned) are "possible" but not "valid" to
//!    libphonenumber, and operators use such numbers on private trunks and in tests.

use std::collections::HashSet;

use phonenumber::metadata::DATABASE;
use phonenumber::Mode;
use serde::{Deserialize, Serialize};

/// A phone number in E.164 form (`+` then up to 15 digits), validated by [`parse_e164`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct E164(String);

impl E164 {
    /// The E.164 text, e.g. `+19585550123`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for E164 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NumberError {
    /// Empty field.
    #[error("empty phone number")]
    Empty,
    /// No leading `+` and country code.
    #[error("must start with + and the country code, e.g. +1 958 555 0123")]
    NoPlus,
    /// Parentheses around the area code.
    #[error("parentheses are not allowed; write +1 958 555 0123, not (958)")]
    Parentheses,
    /// A character other than digits, spaces, `-` and `.`.
    #[error("unexpected character {0:?}")]
    BadCharacter(char),
    /// libphonenumber could not parse it.
    #[error("not a phone number: {0}")]
    Unparseable(String),
    /// The country code does not exist.
    #[error("unknown country code +{0}")]
    UnknownCountryCode(u16),
    /// Wrong number of digits for that country.
    #[error("{digits} national digits is not a possible length for country code +{code}")]
    ImpossibleLength {
        /// Country calling code.
        code: u16,
        /// National significant number length given.
        digits: usize,
    },
}

/// Parses an international phone number and returns its E.164 form. See the module
/// docs for the exact rule.
pub fn parse_e164(text: &str) -> Result<E164, NumberError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(NumberError::Empty);
    }
    if t.contains('(') || t.contains(')') {
        return Err(NumberError::Parentheses);
    }
    let Some(rest) = t.strip_prefix('+') else {
        return Err(NumberError::NoPlus);
    };
    if let Some(c) = rest
        .chars()
        .find(|c| !(c.is_ascii_digit() || matches!(c, ' ' | '-' | '.')))
    {
        return Err(NumberError::BadCharacter(c));
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() || digits.len() > 15 {
        return Err(NumberError::Unparseable(format!(
            "{} digits (E.164 allows 1 to 15)",
            digits.len()
        )));
    }
    // The canonical form is `+` and the digits as typed; libphonenumber must read it
    // back unchanged (it may otherwise strip a national prefix or an extension, which
    // would make the stored number differ from what the trunk sends).
    let e164 = format!("+{digits}");
    let parsed =
        phonenumber::parse(None, &e164).map_err(|e| NumberError::Unparseable(e.to_string()))?;
    let formatted = parsed.format().mode(Mode::E164).to_string();
    if formatted != e164 {
        return Err(NumberError::Unparseable(format!(
            "libphonenumber reads it as {formatted}; write the number in E.164"
        )));
    }
    if parsed.is_valid() {
        return Ok(E164(e164));
    }
    let code = parsed.code().value();
    let Some(metas) = DATABASE.by_code(&code) else {
        return Err(NumberError::UnknownCountryCode(code));
    };
    let national_len = e164.len() - 1 - code.to_string().len();
    // The crate's metadata leaves the general descriptor's lengths empty, so take the
    // union over the number types (fixed line, mobile, toll free, ...).
    let len = national_len as u16;
    let possible = metas.iter().any(|m| {
        let d = m.descriptors();
        d.general().possible_length().contains(&len)
            || [
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.pager(),
                d.uan(),
                d.voicemail(),
            ]
            .into_iter()
            .flatten()
            .any(|x| x.possible_length().contains(&len))
    });
    if possible {
        Ok(E164(e164))
    } else {
        Err(NumberError::ImpossibleLength {
            code,
            digits: national_len,
        })
    }
}

/// A number on the gateway's list, with its optional description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberEntry {
    /// E.164 text.
    pub number: String,
    /// Free-text description ("" when none).
    #[serde(default)]
    pub description: String,
}

/// One refused CSV row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// 1-based line number in the uploaded file.
    pub line: u64,
    /// The row's number field as sent (may be empty).
    pub value: String,
    /// Why the row was refused.
    pub reason: String,
}

/// Longest description kept, in characters.
pub const MAX_DESCRIPTION: usize = 256;

/// Parses a CSV upload: rows `number[,description]`, an optional header row (first row
/// whose first field is `number`, `phone_number` or `phone number`, any case), blank
/// lines skipped. Returns every bad row (not just the first); duplicates (by E.164) are
/// bad rows naming the line of the first occurrence.
pub fn parse_csv(body: &[u8]) -> Result<Vec<NumberEntry>, Vec<RowError>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(body);
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut seen: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut record = csv::ByteRecord::new();
    let mut first = true;
    loop {
        let line = reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                errors.push(RowError {
                    line: e.position().map_or(line, |p| p.line()),
                    value: String::new(),
                    reason: format!("unreadable CSV: {e}"),
                });
                break;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        let field = |i: usize| -> Result<String, ()> {
            match record.get(i) {
                None => Ok(String::new()),
                Some(b) => std::str::from_utf8(b).map(str::to_owned).map_err(|_| ()),
            }
        };
        let (Ok(number), Ok(description)) = (field(0), field(1)) else {
            errors.push(RowError {
                line,
                value: String::new(),
                reason: "not UTF-8".to_owned(),
            });
            first = false;
            continue;
        };
        let was_first = std::mem::replace(&mut first, false);
        if record.len() == 1 && number.is_empty() {
            continue; // blank line
        }
        if was_first
            && matches!(
                number.to_ascii_lowercase().as_str(),
                "number" | "phone_number" | "phone number" | "phonenumber"
            )
        {
            continue; // header row
        }
        if record.len() > 2 {
            errors.push(RowError {
                line,
                value: number,
                reason: format!("{} fields; expected number[,description]", record.len()),
            });
            continue;
        }
        if description.chars().count() > MAX_DESCRIPTION {
            errors.push(RowError {
                line,
                value: number,
                reason: format!("description longer than {MAX_DESCRIPTION} characters"),
            });
            continue;
        }
        match parse_e164(&number) {
            Err(e) => errors.push(RowError {
                line,
                value: number,
                reason: e.to_string(),
            }),
            Ok(n) => {
                if let Some(prev) = seen.get(n.as_str()) {
                    errors.push(RowError {
                        line,
                        value: number,
                        reason: format!("duplicate of {} on line {prev}", n.as_str()),
                    });
                } else {
                    seen.insert(n.as_str().to_owned(), line);
                    entries.push(NumberEntry {
                        number: n.0,
                        description,
                    });
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}

/// The set of numbers the gateway answers, as the SIP layer reads it per INVITE.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NumberSet {
    numbers: HashSet<String>,
}

impl NumberSet {
    /// A set from E.164 strings.
    pub fn new<I: IntoIterator<Item = String>>(numbers: I) -> Self {
        Self {
            numbers: numbers.into_iter().collect(),
        }
    }

    /// Whether the dialed user part (from the Request-URI or To) is on the list. Accepts
    /// `+19585550123`, `19585550123` (trunks that drop the `+`) and visual separators.
    pub fn contains_dialed(&self, user: &str) -> bool {
        let digits: String = user.chars().filter(char::is_ascii_digit).collect();
        if digits.is_empty() || digits.len() > 15 {
            return false;
        }
        self.numbers.contains(&format!("+{digits}"))
    }

    /// The numbers, as the SIP core's admission set.
    pub fn to_set(&self) -> HashSet<String> {
        self.numbers.clone()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_number_is_accepted_in_the_seed_format() {
        assert_eq!(
            parse_e164("+1 958 555 0123").unwrap().as_str(),
            "+19585550123"
        );
        assert_eq!(parse_e164("+19585550123").unwrap().as_str(), "+19585550123");
        assert_eq!(
            parse_e164("+44 20 7946 0958").unwrap().as_str(),
            "+442079460958"
        );
    }

    #[test]
    fn parentheses_missing_plus_and_bad_lengths_are_refused() {
        assert_eq!(
            parse_e164("+1 (958) 555 0123"),
            Err(NumberError::Parentheses)
        );
        assert_eq!(parse_e164("(958) 555 0123"), Err(NumberError::Parentheses));
        assert_eq!(parse_e164("19585550123"), Err(NumberError::NoPlus));
        assert!(matches!(
            parse_e164("+1 958 555 012"),
            Err(NumberError::ImpossibleLength { .. })
        ));
        assert!(matches!(
            parse_e164("+1958555abcd"),
            Err(NumberError::BadCharacter('a'))
        ));
        assert!(parse_e164("+").is_err());
        assert!(parse_e164("+9991234567").is_err());
    }

    #[test]
    fn csv_reports_every_bad_row_with_its_line() {
        let body = b"number,description\n+1 958 555 0123,Main\n(958) 555 0124\n+19585550123,dup\n\n+442079460958\nnope,x,y\n";
        let errs = parse_csv(body).unwrap_err();
        let lines: Vec<u64> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 7], "{errs:?}");
        assert!(errs[1].reason.contains("line 2"));
    }

    #[test]
    fn csv_without_header_parses() {
        let got = parse_csv(b"+19585550123\n+19585550124,Sales desk\n").unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].description, "Sales desk");
    }

    #[test]
    fn dialed_user_parts_match_with_or_without_plus() {
        let set = NumberSet::new(["+19585550123".to_owned()]);
        assert!(set.contains_dialed("+19585550123"));
        assert!(set.contains_dialed("19585550123"));
        assert!(!set.contains_dialed("19585550124"));
        assert!(!set.contains_dialed(""));
    }

    #[test]
    fn random_input_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        let alphabet = b"+0123456789 ()-.,\"\n\rabc\xff";
        let mut accepted = 0;
        for _ in 0..1_500 {
            let len = rng.random_range(0..40);
            let bytes: Vec<u8> = if rng.random_bool(0.5) {
                (0..len)
                    .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                    .collect()
            } else {
                // Mostly-plausible numbers: + and 8..14 digits with separators.
                let mut v = vec![b'+'];
                for _ in 0..rng.random_range(8..15) {
                    if rng.random_bool(0.15) {
                        v.push(b" -."[rng.random_range(0..3)]);
                    }
                    v.push(b'0' + rng.random_range(0..10u8));
                }
                v
            };
            let _ = parse_csv(&bytes);
            if let Ok(s) = std::str::from_utf8(&bytes) {
                if let Ok(n) = parse_e164(s) {
                    accepted += 1;
                    // Whatever is accepted is canonical E.164 and re-parses to itself.
                    assert!(
                        n.as_str().starts_with('+')
                            && n.as_str()[1..].bytes().all(|b| b.is_ascii_digit())
                    );
                    assert_eq!(parse_e164(n.as_str()).as_ref(), Ok(&n));
                }
            }
        }
        assert!(accepted > 0, "the generator reaches accepted numbers too");
    }
}
