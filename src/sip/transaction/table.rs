//! Matching requests to server transactions (RFC 3261 §17.2.3) and merged-request
//! detection (§8.2.2.2).

use std::collections::HashMap;

/// The RFC 3261 branch prefix.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// What identifies a server transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransactionKey {
    /// RFC 3261 matching: branch, sent-by, and the method (ACK folded into INVITE).
    Rfc3261 {
        /// Top Via branch (starts with the magic cookie).
        branch: String,
        /// Top Via sent-by (host[:port]), lower-cased.
        sent_by: String,
        /// Method, with ACK counted as INVITE.
        method: String,
    },
    /// RFC 2543 fallback for branches without the cookie (§17.2.3 last paragraph).
    Rfc2543 {
        /// Call-ID.
        call_id: String,
        /// CSeq number.
        cseq: u32,
        /// From tag (may be empty).
        from_tag: String,
        /// Top Via sent-by.
        sent_by: String,
        /// Method, with ACK counted as INVITE.
        method: String,
    },
}

impl TransactionKey {
    /// Builds the key for a request's top Via and headers.
    pub fn for_request(
        method: &str,
        branch: Option<&str>,
        sent_by: &str,
        call_id: &str,
        cseq: u32,
        from_tag: Option<&str>,
    ) -> Self {
        let method = if method.eq_ignore_ascii_case("ACK") {
            "INVITE".to_owned()
        } else {
            method.to_ascii_uppercase()
        };
        let sent_by = sent_by.to_ascii_lowercase();
        match branch {
            Some(b) if b.starts_with(MAGIC_COOKIE) && b.len() > MAGIC_COOKIE.len() => {
                TransactionKey::Rfc3261 {
                    branch: b.to_owned(),
                    sent_by,
                    method,
                }
            }
            _ => TransactionKey::Rfc2543 {
                call_id: call_id.to_owned(),
                cseq,
                from_tag: from_tag.unwrap_or_default().to_owned(),
                sent_by,
                method,
            },
        }
    }
}

/// What makes two requests "the same request" arriving by different paths
/// (§8.2.2.2): From tag, Call-ID and CSeq, on a request without a To tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MergeKey {
    /// From tag.
    pub from_tag: String,
    /// Call-ID.
    pub call_id: String,
    /// CSeq number.
    pub cseq: u32,
    /// CSeq method.
    pub method: String,
}

/// Server transactions by key, with the merge index.
#[derive(Debug)]
pub struct TransactionTable<T> {
    by_key: HashMap<TransactionKey, (T, Option<MergeKey>)>,
    merge: HashMap<MergeKey, TransactionKey>,
}

impl<T> Default for TransactionTable<T> {
    fn default() -> Self {
        Self {
            by_key: HashMap::new(),
            merge: HashMap::new(),
        }
    }
}

impl<T> TransactionTable<T> {
    /// The transaction for `key`, if any.
    pub fn get_mut(&mut self, key: &TransactionKey) -> Option<&mut T> {
        self.by_key.get_mut(key).map(|(t, _)| t)
    }

    /// True if a request with `merge` (no To tag) but a different `key` is already
    /// being handled: the UAS answers it 482 Loop Detected.
    pub fn is_merged(&self, key: &TransactionKey, merge: &MergeKey) -> bool {
        self.merge.get(merge).is_some_and(|k| k != key)
    }

    /// Adds a transaction; `merge` is given for out-of-dialog requests.
    pub fn insert(&mut self, key: TransactionKey, merge: Option<MergeKey>, tx: T) {
        if let Some(m) = &merge {
            self.merge.insert(m.clone(), key.clone());
        }
        self.by_key.insert(key, (tx, merge));
    }

    /// The transaction key a merge key was recorded for (used to match an ACK whose
    /// branch differs from its INVITE's, as some RFC 2543-era peers send).
    pub fn key_for_merge(&self, merge: &MergeKey) -> Option<&TransactionKey> {
        self.merge.get(merge)
    }

    /// Removes one transaction.
    pub fn remove(&mut self, key: &TransactionKey) -> Option<T> {
        let (t, m) = self.by_key.remove(key)?;
        if let Some(m) = m {
            if self.merge.get(&m) == Some(key) {
                self.merge.remove(&m);
            }
        }
        Some(t)
    }

    /// Removes the transactions for which `done` is true; returns how many.
    pub fn retain(&mut self, mut keep: impl FnMut(&TransactionKey, &mut T) -> bool) -> usize {
        let before = self.by_key.len();
        self.by_key.retain(|k, (t, _)| keep(k, t));
        let by_key = &self.by_key;
        self.merge.retain(|_, k| by_key.contains_key(k));
        before - self.by_key.len()
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Iterates mutably over all transactions (timer sweep).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&TransactionKey, &mut T)> {
        self.by_key.iter_mut().map(|(k, (t, _))| (k, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_matches_its_invite_and_cancel_does_not() {
        let inv =
            TransactionKey::for_request("INVITE", Some("z9hG4bKa"), "H:5060", "c", 1, Some("f"));
        let ack = TransactionKey::for_request("ACK", Some("z9hG4bKa"), "h:5060", "c", 1, Some("f"));
        let cancel =
            TransactionKey::for_request("CANCEL", Some("z9hG4bKa"), "h:5060", "c", 1, Some("f"));
        assert_eq!(inv, ack);
        assert_ne!(inv, cancel);
    }

    #[test]
    fn rfc2543_branch_falls_back_to_dialog_fields() {
        let a = TransactionKey::for_request("INVITE", Some("1"), "h", "c", 1, None);
        let b = TransactionKey::for_request("INVITE", None, "h", "c", 1, None);
        assert_eq!(a, b);
        assert!(matches!(a, TransactionKey::Rfc2543 { .. }));
        let c = TransactionKey::for_request("INVITE", None, "h", "c", 2, None);
        assert_ne!(a, c);
    }

    #[test]
    fn merged_request_is_detected_by_from_tag_call_id_cseq() {
        let mut t: TransactionTable<u8> = TransactionTable::default();
        let k1 = TransactionKey::for_request("INVITE", Some("z9hG4bK1"), "a", "c", 1, Some("f"));
        let k2 = TransactionKey::for_request("INVITE", Some("z9hG4bK2"), "b", "c", 1, Some("f"));
        let m = MergeKey {
            from_tag: "f".into(),
            call_id: "c".into(),
            cseq: 1,
            method: "INVITE".into(),
        };
        t.insert(k1.clone(), Some(m.clone()), 0);
        assert!(!t.is_merged(&k1, &m), "a retransmission is not a merge");
        assert!(t.is_merged(&k2, &m));
        assert_eq!(t.retain(|_, _| false), 1);
        assert!(!t.is_merged(&k2, &m));
    }
}
