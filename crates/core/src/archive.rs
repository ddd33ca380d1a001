//! The compliance archive: an append-only, hash-chained record of every conversation event
//! and every compliance-relevant happening (walls, disclaimers, queue transitions).
//!
//! Each record commits to the one before: `hash = HMAC-SHA256(key, prev_hash ‖ id ‖ ts ‖
//! content_hash)`, where `content_hash = SHA-256` of the record's content. The key lives
//! outside the database, so an edit made to the database behind the server's back cannot
//! be re-sealed. Purging expired content keeps `content_hash`, so the chain still verifies.
//!
//! [`Verifier`] walks records in id order and reports the first one that does not fit.

use crate::clock::Millis;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// What is archived, before it gets its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArchiveEntry {
    pub ts: Millis,
    /// `message`, `created`, `joined`, `left`, `disclaimer`, `wall.blocked`, `wall.flagged`,
    /// `queue.<event>`, …
    pub kind: String,
    pub conversation: Option<i64>,
    /// `direct`, `group`, `queue` (when there is a conversation).
    pub conversation_kind: Option<String>,
    /// The conversation log event this record is, if any.
    pub event: Option<i64>,
    pub actor: Option<String>,
    pub body: String,
    /// Details as JSON (the disclaimer rule, the wall, the queue chat, …).
    pub meta: String,
}

/// A record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRecord {
    pub id: i64,
    pub entry: ArchiveEntry,
    /// `None` once purged (the content hash stays).
    pub purged: bool,
    pub content_hash: String,
    pub prev_hash: String,
    pub hash: String,
}

/// An e-discovery search. Every filter is optional; `keywords` must all occur.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveQuery {
    pub keywords: Vec<String>,
    pub participant: Option<crate::directory::UserId>,
    pub group: Option<crate::directory::GroupId>,
    /// `direct`, `group`, `queue`.
    pub conversation_kind: Option<String>,
    pub from: Option<Millis>,
    pub to: Option<Millis>,
    /// Only this conversation.
    pub conversation: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

/// A search hit: the record and a snippet whose matched words are wrapped in
/// [`HIT_START`] … [`HIT_END`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveHit {
    pub id: i64,
    pub ts: Millis,
    pub kind: String,
    pub conversation: Option<i64>,
    pub conversation_kind: Option<String>,
    pub actor: Option<String>,
    pub snippet: String,
}

pub const HIT_START: char = '\u{2}';
pub const HIT_END: char = '\u{3}';

/// Split a marked snippet into (text, is a hit) segments.
pub fn snippet_segments(s: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut hit = false;
    let mut cur = String::new();
    for c in s.chars() {
        if c == HIT_START || c == HIT_END {
            if !cur.is_empty() {
                out.push((std::mem::take(&mut cur), hit));
            }
            hit = c == HIT_START;
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push((cur, hit));
    }
    out
}

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn field(out: &mut Vec<u8>, v: &str) {
    out.extend_from_slice(&(v.len() as u64).to_be_bytes());
    out.extend_from_slice(v.as_bytes());
}

/// SHA-256 of the content, every field length-prefixed (no two contents hash alike by
/// moving text between fields).
pub fn content_hash(e: &ArchiveEntry) -> String {
    let mut b = Vec::with_capacity(64 + e.body.len() + e.meta.len());
    field(&mut b, &e.kind);
    field(&mut b, &e.conversation.map(|c| c.to_string()).unwrap_or_default());
    field(&mut b, e.conversation_kind.as_deref().unwrap_or(""));
    field(&mut b, &e.event.map(|c| c.to_string()).unwrap_or_default());
    field(&mut b, e.actor.as_deref().unwrap_or(""));
    field(&mut b, &e.body);
    field(&mut b, &e.meta);
    hex(&Sha256::digest(&b))
}

/// The record's seal: HMAC-SHA256 over its place in the chain and its content hash.
pub fn link_hash(key: &[u8], prev_hash: &str, id: i64, ts: Millis, content_hash: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(prev_hash.as_bytes());
    mac.update(&id.to_be_bytes());
    mac.update(&ts.to_be_bytes());
    mac.update(content_hash.as_bytes());
    hex(&mac.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Seal entries after the chain's head `(last id, last hash)`.
pub fn seal(key: &[u8], head: (i64, &str), entries: &[ArchiveEntry]) -> Vec<ArchiveRecord> {
    let (mut id, mut prev) = (head.0, head.1.to_string());
    entries
        .iter()
        .map(|e| {
            id += 1;
            let content_hash = content_hash(e);
            let hash = link_hash(key, &prev, id, e.ts, &content_hash);
            let r = ArchiveRecord { id, entry: e.clone(), purged: false, content_hash, prev_hash: prev.clone(), hash };
            prev = r.hash.clone();
            r
        })
        .collect()
}

/// What is wrong with the archive, at the first record that does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tamper {
    /// The record's content is not what was sealed.
    Changed { id: i64 },
    /// Records are missing before this one (ids `from..=to`).
    Removed { from: i64, to: i64 },
    /// A record the server did not seal at this place (inserted, forged, moved, renumbered).
    Inserted { id: i64 },
    /// The record does not follow the one before it (moved, or the one before was swapped).
    Reordered { id: i64 },
}

impl std::fmt::Display for Tamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tamper::Changed { id } => write!(f, "record {id} was changed after it was archived"),
            Tamper::Removed { from, to } if from == to => write!(f, "record {from} was removed"),
            Tamper::Removed { from, to } => write!(f, "records {from} to {to} were removed"),
            Tamper::Inserted { id } => {
                write!(
                    f,
                    "record {id} was not sealed by this server where it stands (inserted, forged, moved or renumbered)"
                )
            }
            Tamper::Reordered { id } => write!(f, "record {id} is out of order (records were moved or swapped)"),
        }
    }
}

/// Walks records in id order.
#[derive(Debug)]
pub struct Verifier<'k> {
    key: &'k [u8],
    last_id: i64,
    last_hash: String,
    pub records: u64,
    pub purged: u64,
}

impl<'k> Verifier<'k> {
    pub fn new(key: &'k [u8]) -> Self {
        Self { key, last_id: 0, last_hash: GENESIS.to_string(), records: 0, purged: 0 }
    }

    /// The next record; the first problem found is returned (verification stops there).
    pub fn check(&mut self, r: &ArchiveRecord) -> Result<(), Tamper> {
        if r.id <= self.last_id {
            return Err(Tamper::Reordered { id: r.id });
        }
        if r.id > self.last_id + 1 {
            return Err(Tamper::Removed { from: self.last_id + 1, to: r.id - 1 });
        }
        // Its content is what its content hash says (unless purged)?
        if !r.purged && content_hash(&r.entry) != r.content_hash {
            return Err(Tamper::Changed { id: r.id });
        }
        // Sealed by us, at this place, over that content hash?
        if link_hash(self.key, &r.prev_hash, r.id, r.entry.ts, &r.content_hash) != r.hash {
            return Err(Tamper::Inserted { id: r.id });
        }
        if r.prev_hash != self.last_hash {
            return Err(Tamper::Reordered { id: r.id });
        }
        self.purged += u64::from(r.purged);
        self.records += 1;
        self.last_id = r.id;
        self.last_hash = r.hash.clone();
        Ok(())
    }

    /// The head reached: (last id, last hash).
    pub fn head(&self) -> (i64, &str) {
        (self.last_id, &self.last_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"test key";

    fn chain(n: usize) -> Vec<ArchiveRecord> {
        let entries: Vec<ArchiveEntry> = (0..n)
            .map(|i| ArchiveEntry {
                ts: 1000 + i as i64,
                kind: "message".into(),
                conversation: Some(7),
                conversation_kind: Some("direct".into()),
                event: Some(i as i64 + 1),
                actor: Some("alice@example.com".into()),
                body: format!("message {i}"),
                meta: String::new(),
            })
            .collect();
        seal(KEY, (0, GENESIS), &entries)
    }

    fn verify(records: &[ArchiveRecord]) -> Result<u64, Tamper> {
        let mut v = Verifier::new(KEY);
        for r in records {
            v.check(r)?;
        }
        Ok(v.records)
    }

    #[test]
    fn an_untouched_chain_verifies_and_continues() {
        let mut c = chain(5);
        assert_eq!(verify(&c), Ok(5));
        let more = seal(KEY, (5, &c[4].hash), &[ArchiveEntry { kind: "left".into(), ..Default::default() }]);
        c.extend(more);
        assert_eq!(verify(&c), Ok(6));
    }

    #[test]
    fn every_kind_of_tampering_is_caught_at_its_record() {
        let mut c = chain(6);
        c[2].entry.body = "message two, improved".into();
        assert_eq!(verify(&c), Err(Tamper::Changed { id: 3 }));

        let mut c = chain(6);
        c[3].content_hash = content_hash(&ArchiveEntry { body: "x".into(), ..c[3].entry.clone() });
        assert_eq!(verify(&c), Err(Tamper::Changed { id: 4 }), "a new content hash without the key");

        let mut c = chain(6);
        c.remove(2);
        assert_eq!(verify(&c), Err(Tamper::Removed { from: 3, to: 3 }));

        // Removed and renumbered: the links no longer fit.
        let mut c = chain(6);
        c.remove(2);
        for r in c.iter_mut().skip(2) {
            r.id -= 1;
        }
        assert_eq!(verify(&c), Err(Tamper::Inserted { id: 3 }));

        // A forged record at the end, chained but sealed without the key.
        let mut c = chain(3);
        let forged = seal(b"guessed", (3, &c[2].hash), &[ArchiveEntry { body: "forged".into(), ..Default::default() }]);
        c.extend(forged);
        assert_eq!(verify(&c), Err(Tamper::Inserted { id: 4 }));

        // Two records swapped (ids kept in order, contents exchanged).
        let mut c = chain(6);
        let (a, b) = (c[1].clone(), c[2].clone());
        c[1] = ArchiveRecord { id: 2, ..b };
        c[2] = ArchiveRecord { id: 3, ..a };
        assert!(verify(&c).is_err());

        // The order of rows changed.
        let mut c = chain(6);
        c.swap(3, 4);
        assert_eq!(verify(&c), Err(Tamper::Removed { from: 4, to: 4 }));
    }

    #[test]
    fn purged_content_keeps_the_chain() {
        let mut c = chain(4);
        c[1].entry.body.clear();
        c[1].purged = true;
        let mut v = Verifier::new(KEY);
        for r in &c {
            v.check(r).unwrap();
        }
        assert_eq!((v.records, v.purged), (4, 1));
    }
}

/// A legal hold: nothing a custodian took part in is purged while it is active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalHold {
    pub id: i64,
    pub custodian: crate::directory::UserId,
    pub reason: String,
    pub created_by: Option<String>,
    pub created_at: Millis,
    pub released_at: Option<Millis>,
}

/// How long a conversation is kept: the longest retention that applies to any of its
/// participants (global, or through one of their groups); `None` keeps it forever.
pub fn retention_days(
    policies: &[(Option<crate::directory::GroupId>, i64)],
    participant_groups: &[crate::directory::GroupId],
) -> Option<i64> {
    policies.iter().filter(|(g, _)| g.is_none_or(|g| participant_groups.contains(&g))).map(|(_, days)| *days).max()
}

#[cfg(test)]
mod retention_tests {
    use super::*;
    use crate::directory::GroupId;

    #[test]
    fn the_longest_applicable_retention_wins() {
        let p = [(None, 30), (Some(GroupId(1)), 365), (Some(GroupId(2)), 7)];
        assert_eq!(retention_days(&p, &[]), Some(30));
        assert_eq!(
            retention_days(&p, &[GroupId(2)]),
            Some(30),
            "a shorter group policy does not shorten the global one"
        );
        assert_eq!(retention_days(&p, &[GroupId(2), GroupId(1)]), Some(365));
        assert_eq!(retention_days(&p[1..], &[GroupId(3)]), None, "no policy: kept");
    }
}
