//! The recognition grammar built from an assistant's vocabulary: its phrases, digit
//! strings, and yes/no; a JSGF text for PocketSphinx and a dictionary trimmed to its words.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::OnceLock;

use super::SpeechError;

const DIGITS: [&str; 11] = [
    "zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];
const YES_NO: [&str; 6] = ["yes", "no", "yeah", "yep", "nope", "correct"];
const DIGIT_WORDS: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];

/// Pronunciations from the model's full dictionary (`cmudict-en-us.dict`), loaded once.
#[derive(Debug)]
struct Lexicon {
    /// word → its dictionary lines (`word phones`, `word(2) phones`, ...).
    entries: HashMap<String, Vec<String>>,
}

static LEXICON: OnceLock<Result<Lexicon, String>> = OnceLock::new();

fn lexicon() -> Result<&'static Lexicon, SpeechError> {
    LEXICON
        .get_or_init(|| {
            let path = voxgate_speech_sys::default_model_dir().join("cmudict-en-us.dict");
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!("dictionary {}: {e} (run scripts/setup.sh)", path.display())
            })?;
            let mut entries: HashMap<String, Vec<String>> = HashMap::new();
            for line in text.lines() {
                let Some((head, _)) = line.split_once(' ') else {
                    continue;
                };
                let word = head.split('(').next().unwrap_or(head);
                entries
                    .entry(word.to_string())
                    .or_default()
                    .push(line.to_string());
            }
            Ok(Lexicon { entries })
        })
        .as_ref()
        .map_err(|e| SpeechError::Engine(e.clone()))
}

/// Lower-case, spell out digits, drop punctuation (keeping in-word apostrophes).
pub fn normalize(phrase: &str) -> String {
    let mut out = String::with_capacity(phrase.len());
    for ch in phrase.chars() {
        if let Some(d) = ch.to_digit(10) {
            out.push(' ');
            out.push_str(DIGIT_WORDS[d as usize]);
            out.push(' ');
        } else if ch.is_alphabetic() || ch == '\'' {
            out.extend(ch.to_lowercase());
        } else {
            out.push(' ');
        }
    }
    out.split_whitespace()
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A grammar: the assistant's phrases, any digit string, and yes/no words.
#[derive(Debug)]
pub struct Grammar {
    phrases: BTreeSet<String>,
    skipped: Vec<String>,
    jsgf: String,
    dict: String,
    /// Phones in each word's first pronunciation.
    phones: HashMap<String, usize>,
    dict_path: OnceLock<Result<PathBuf, String>>,
}

impl Grammar {
    /// Build from the assistant's vocabulary (intent examples, entity values and synonyms).
    /// Phrases are normalised; a phrase with a word the dictionary lacks is skipped and
    /// listed by [`Grammar::skipped`].
    pub fn from_phrases(phrases: &[String]) -> Result<Grammar, SpeechError> {
        let lex = lexicon()?;
        let mut kept = BTreeSet::new();
        let mut skipped = Vec::new();
        for p in phrases {
            let n = normalize(p);
            if n.is_empty() {
                continue;
            }
            if n.split(' ').all(|w| lex.entries.contains_key(w)) {
                kept.insert(n);
            } else {
                skipped.push(p.clone());
            }
        }
        let mut words: BTreeSet<&str> = DIGITS.iter().chain(YES_NO.iter()).copied().collect();
        for p in &kept {
            words.extend(p.split(' '));
        }
        let mut dict = String::new();
        let mut phones = HashMap::new();
        for w in &words {
            let lines = lex
                .entries
                .get(*w)
                .ok_or_else(|| SpeechError::Engine(format!("dictionary lacks {w:?}")))?;
            if let Some(first) = lines.first() {
                phones.insert(w.to_string(), first.split_whitespace().count() - 1);
            }
            for l in lines {
                dict.push_str(l);
                dict.push('\n');
            }
        }
        let mut jsgf = String::from("#JSGF V1.0;\ngrammar voxgate;\n");
        jsgf.push_str("public <utterance> = <yesno> | <digits>");
        if !kept.is_empty() {
            jsgf.push_str(" | <phrase>");
        }
        jsgf.push_str(";\n");
        jsgf.push_str(&format!("<yesno> = {};\n", YES_NO.join(" | ")));
        jsgf.push_str(&format!(
            "<digit> = {};\n<digits> = <digit>+;\n",
            DIGITS.join(" | ")
        ));
        if !kept.is_empty() {
            let alts: Vec<&str> = kept.iter().map(String::as_str).collect();
            jsgf.push_str(&format!("<phrase> = {};\n", alts.join(" | ")));
        }
        Ok(Grammar {
            phrases: kept,
            skipped,
            jsgf,
            dict,
            phones,
            dict_path: OnceLock::new(),
        })
    }

    /// The JSGF text given to PocketSphinx.
    pub fn jsgf(&self) -> &str {
        &self.jsgf
    }

    /// Phrases dropped because a word is not in the dictionary.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// The normalised phrases in the grammar.
    pub fn phrases(&self) -> impl Iterator<Item = &str> {
        self.phrases.iter().map(String::as_str)
    }

    /// Whether `hyp` is a complete sentence of the grammar (PocketSphinx returns prefixes
    /// such as "talk to an" for out-of-grammar speech; those are rejected).
    pub fn accepts(&self, hyp: &str) -> bool {
        let hyp = hyp.trim();
        if hyp.is_empty() {
            return false;
        }
        self.phrases.contains(hyp)
            || YES_NO.contains(&hyp)
            || hyp.split(' ').all(|w| DIGITS.contains(&w))
    }

    /// Phones in a sentence of the grammar (each word's first pronunciation); `None` when
    /// a word is not in the grammar.
    pub fn phone_count(&self, sentence: &str) -> Option<usize> {
        sentence
            .split_whitespace()
            .map(|w| self.phones.get(w).copied())
            .sum()
    }

    /// The trimmed dictionary, written once per process under the temp directory.
    pub fn dict_file(&self) -> Result<PathBuf, SpeechError> {
        self.dict_path
            .get_or_init(|| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                self.dict.hash(&mut h);
                let dir = std::env::temp_dir().join("voxgate-speech");
                std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                let path = dir.join(format!("grammar-{:016x}.dict", h.finish()));
                if !path.exists() {
                    let tmp = dir.join(format!(
                        "grammar-{:016x}.{}.tmp",
                        h.finish(),
                        std::process::id()
                    ));
                    std::fs::write(&tmp, &self.dict)
                        .map_err(|e| format!("{}: {e}", tmp.display()))?;
                    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
                }
                Ok(path)
            })
            .clone()
            .map_err(SpeechError::Engine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_checks_membership() {
        assert_eq!(normalize("Talk to an Agent!"), "talk to an agent");
        assert_eq!(normalize("press 12, please"), "press one two please");
        let g = Grammar::from_phrases(&["Check my balance".into(), "Frobnicate the zxqv".into()])
            .expect("grammar");
        assert!(g.accepts("check my balance"));
        assert!(g.accepts("four two"));
        assert!(g.accepts("yes"));
        assert!(!g.accepts("check my"));
        assert!(!g.accepts(""));
        assert_eq!(g.skipped(), ["Frobnicate the zxqv".to_string()]);
        assert!(g.jsgf().contains("| check my balance") || g.jsgf().contains("= check my balance"));
        let dict = std::fs::read_to_string(g.dict_file().expect("dict")).expect("read");
        assert!(dict.lines().any(|l| l.starts_with("balance ")));
        assert!(dict.lines().count() < 60);
        // check(CH EH K) my(M AY) balance(B AE L AH N S)
        assert_eq!(g.phone_count("check my balance"), Some(11));
        assert_eq!(g.phone_count("check my zxqv"), None);
    }
}
