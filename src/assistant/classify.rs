//! Intent classification and entity recognition for the embedded dialog engine.
//!
//! Method (directed phone dialogs, small vocabularies):
//! 1. Normalise: lowercase, split on anything that is not a letter or digit, strip a
//!    plural `s` from words longer than three letters.
//! 2. Canonicalise synonyms: every occurrence of an entity value or synonym (longest
//!    first) becomes one token `@entity:value`, in examples and input alike, so
//!    "invoice" and "bill" count as the same word when both are synonyms of one value.
//! 3. Score each example by weighted Dice overlap
//!    `2·w(A∩B) / (w(A) + w(B))`, where function words weigh 0.2 and other tokens 1.
//!    An intent's confidence is its best example's score (1.0 for an exact match).
//! 4. The top intent wins when its confidence is at least [`INTENT_THRESHOLD`];
//!    otherwise no intent matches and `anything_else` takes the turn.
//!
//! Entities: values and synonyms match whole words, case-insensitively; `patterns` values
//! match their regex against the raw input text.

use regex::Regex;

use super::condition::EntityMatch;

/// Lowest confidence at which the top intent is taken.
pub const INTENT_THRESHOLD: f64 = 0.5;

const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "to", "i", "im", "my", "me", "please", "would", "like", "want", "can",
    "could", "you", "is", "it", "of", "for", "and", "do", "with", "on", "in", "need", "be", "some",
    "just", "id", "d", "speak", "get", "now", "yes", "hi", "hello", "that", "this",
];

fn weight(tok: &str) -> f64 {
    if STOP_WORDS.contains(&tok) {
        0.2
    } else {
        1.0
    }
}

/// Lowercased word tokens with byte spans in the original text.
fn words(text: &str) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        if c.is_alphanumeric() {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            out.push((text[s..i].to_lowercase(), s, i));
        }
    }
    out
}

fn stem(w: &str) -> String {
    if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") {
        w[..w.len() - 1].to_string()
    } else {
        w.to_string()
    }
}

/// A synonym phrase of an entity value, as normalised words.
#[derive(Debug, Clone)]
struct Phrase {
    words: Vec<String>,
    entity: String,
    value: String,
}

#[derive(Debug, Clone)]
struct Pattern {
    regex: Regex,
    entity: String,
    value: String,
}

#[derive(Debug, Clone)]
struct Example {
    tokens: Vec<String>,
    weight: f64,
}

/// A compiled classifier for one skill.
#[derive(Debug, Clone, Default)]
pub(crate) struct Classifier {
    phrases: Vec<Phrase>,
    patterns: Vec<Pattern>,
    intents: Vec<(String, Vec<Example>)>,
}

impl Classifier {
    pub(crate) fn new() -> Classifier {
        Classifier::default()
    }

    pub(crate) fn add_phrase(&mut self, entity: &str, value: &str, phrase: &str) {
        let w: Vec<String> = words(phrase).into_iter().map(|(w, ..)| w).collect();
        if !w.is_empty() {
            self.phrases.push(Phrase {
                words: w,
                entity: entity.into(),
                value: value.into(),
            });
        }
    }

    /// Whether an entity of this name is defined.
    pub(crate) fn has_entity(&self, name: &str) -> bool {
        self.phrases.iter().any(|p| p.entity == name)
            || self.patterns.iter().any(|p| p.entity == name)
    }

    pub(crate) fn add_pattern(&mut self, entity: &str, value: &str, regex: Regex) {
        self.patterns.push(Pattern {
            regex,
            entity: entity.into(),
            value: value.into(),
        });
    }

    /// Call after all phrases are added and before intents.
    pub(crate) fn sort_phrases(&mut self) {
        self.phrases
            .sort_by_key(|p| std::cmp::Reverse(p.words.len()));
    }

    pub(crate) fn add_intent(&mut self, intent: &str, examples: &[String]) {
        let ex = examples
            .iter()
            .map(|e| {
                let tokens = self.tokens(e).0;
                let weight = tokens.iter().map(|t| weight(t)).sum();
                Example { tokens, weight }
            })
            .filter(|e| !e.tokens.is_empty())
            .collect();
        self.intents.push((intent.to_string(), ex));
    }

    /// Canonical tokens of a text, plus the entity matches found on the way.
    fn tokens(&self, text: &str) -> (Vec<String>, Vec<EntityMatch>) {
        let ws = words(text);
        let mut toks = Vec::new();
        let mut matches = Vec::new();
        let mut i = 0;
        while i < ws.len() {
            let hit = self.phrases.iter().find(|p| {
                p.words.len() <= ws.len() - i
                    && p.words
                        .iter()
                        .zip(&ws[i..])
                        .all(|(a, (b, ..))| a == b || stem(a) == stem(b))
            });
            match hit {
                Some(p) => {
                    let n = p.words.len();
                    matches.push(EntityMatch {
                        entity: p.entity.clone(),
                        value: p.value.clone(),
                        literal: None,
                        start: ws[i].1,
                        end: ws[i + n - 1].2,
                    });
                    toks.push(format!("@{}:{}", p.entity, p.value));
                    i += n;
                }
                None => {
                    toks.push(stem(&ws[i].0));
                    i += 1;
                }
            }
        }
        (toks, matches)
    }

    /// Entities in `text`, in order of position.
    pub(crate) fn entities(&self, text: &str) -> Vec<EntityMatch> {
        let (_, mut m) = self.tokens(text);
        for p in &self.patterns {
            for hit in p.regex.find_iter(text) {
                m.push(EntityMatch {
                    entity: p.entity.clone(),
                    value: p.value.clone(),
                    literal: Some(hit.as_str().to_string()),
                    start: hit.start(),
                    end: hit.end(),
                });
            }
        }
        m.sort_by_key(|e| e.start);
        m
    }

    /// Every intent with its confidence, best first.
    pub(crate) fn classify(&self, text: &str) -> Vec<(String, f64)> {
        let (input, _) = self.tokens(text);
        if input.is_empty() {
            return Vec::new();
        }
        let w_in: f64 = input.iter().map(|t| weight(t)).sum();
        let mut scores: Vec<(String, f64)> = self
            .intents
            .iter()
            .map(|(name, examples)| {
                let best = examples
                    .iter()
                    .map(|ex| {
                        if ex.tokens == input {
                            return 1.0;
                        }
                        let mut shared = 0.0;
                        let mut seen: Vec<&String> = Vec::new();
                        for t in &input {
                            if ex.tokens.contains(t) && !seen.contains(&t) {
                                shared += weight(t);
                                seen.push(t);
                            }
                        }
                        2.0 * shared / (w_in + ex.weight)
                    })
                    .fold(0.0, f64::max);
                (name.clone(), best.min(1.0))
            })
            .filter(|(_, s)| *s > 0.0)
            .collect();
        scores.sort_by(|a, b| b.1.total_cmp(&a.1));
        scores
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Classifier {
        let mut c = Classifier::new();
        c.add_phrase("topic", "billing", "invoice");
        c.add_phrase("topic", "billing", "bill");
        c.sort_phrases();
        c.add_intent("billing", &["pay my bill".into(), "billing".into()]);
        c.add_intent("agent", &["talk to an agent".into(), "operator".into()]);
        c
    }

    #[test]
    fn synonym_overlap_scores_above_threshold() {
        let c = demo();
        let r = c.classify("I want to pay my invoice");
        assert_eq!(r[0].0, "billing");
        assert!(r[0].1 >= INTENT_THRESHOLD, "{r:?}");
    }

    #[test]
    fn unrelated_text_stays_below_threshold() {
        let c = demo();
        let r = c.classify("what is the weather like");
        assert!(
            r.first().is_none_or(|(_, s)| *s < INTENT_THRESHOLD),
            "{r:?}"
        );
    }

    #[test]
    fn plural_and_case_are_normalised() {
        let c = demo();
        assert_eq!(c.classify("Operators")[0], ("agent".to_string(), 1.0));
    }
}
