//! Chain verification, pure: a [`Verifier`] is fed one community's stored entries in
//! `seq` order and names the first entry that does not fit (a gap, a wrong hash, or
//! personal data that no longer matches its digest), then checks the chain head.

use super::chain::{self, Fields, GENESIS, Hash};

/// One stored entry as verification needs it.
#[derive(Debug, Clone)]
pub struct Stored<'a> {
    pub seq: i64,
    pub fields: Fields<'a>,
    pub hash: &'a [u8],
    /// `(salt, reason, names)` when the personal data has not been erased.
    pub personal: Option<(&'a [u8], Option<&'a str>, &'a [String])>,
}

/// Why an entry breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// An entry with this number should be here (deleted, or the rows were reordered).
    Missing,
    /// The stored hash is not SHA-256(prev ‖ seq ‖ entry): the entry or one before
    /// it was altered.
    HashMismatch,
    /// The personal data exists but no longer matches the digest the chain hashed.
    PersonalDataAltered,
    /// The entry has personal data but its entry never hashed a digest for it.
    UnexpectedPersonalData,
    /// The chain head records more entries than there are (the newest were removed).
    Truncated { head_seq: i64 },
    /// The chain head's hash differs from the last entry's.
    HeadMismatch,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Break::Missing => write!(f, "the entry is missing"),
            Break::HashMismatch => write!(
                f,
                "its hash does not match its content and the previous hash"
            ),
            Break::PersonalDataAltered => write!(f, "its personal data was altered"),
            Break::UnexpectedPersonalData => {
                write!(f, "it has personal data the chain never hashed")
            }
            Break::Truncated { head_seq } => {
                write!(
                    f,
                    "the chain head says {head_seq} entries but they end before"
                )
            }
            Break::HeadMismatch => write!(f, "the chain head's hash differs from the last entry's"),
        }
    }
}

/// Walks one community's chain.
#[derive(Debug)]
pub struct Verifier {
    prev: Hash,
    next_seq: i64,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    pub fn new() -> Self {
        Verifier {
            prev: GENESIS,
            next_seq: 1,
        }
    }

    /// Entries checked so far.
    pub fn count(&self) -> i64 {
        self.next_seq - 1
    }

    /// Checks the next entry; on a break returns the sequence number it is at.
    pub fn push(&mut self, entry: &Stored<'_>) -> Result<(), (i64, Break)> {
        if entry.seq != self.next_seq {
            return Err((self.next_seq, Break::Missing));
        }
        check_personal(entry).map_err(|b| (entry.seq, b))?;
        let expected = chain::link(&self.prev, entry.seq, &chain::canonical(&entry.fields));
        if entry.hash != expected {
            return Err((entry.seq, Break::HashMismatch));
        }
        self.prev = expected;
        self.next_seq += 1;
        Ok(())
    }

    /// Compares the walked chain with the stored head (`None`: no entries yet).
    pub fn finish(&self, head: Option<(i64, &[u8])>) -> Result<i64, (i64, Break)> {
        let (head_seq, head_hash) = head.unwrap_or((0, &GENESIS));
        if head_seq > self.count() {
            return Err((self.next_seq, Break::Truncated { head_seq }));
        }
        if head_seq < self.count() || head_hash != self.prev {
            return Err((self.count(), Break::HeadMismatch));
        }
        Ok(self.count())
    }
}

fn check_personal(entry: &Stored<'_>) -> Result<(), Break> {
    match (entry.personal, entry.fields.personal_digest) {
        (Some(_), None) => Err(Break::UnexpectedPersonalData),
        (Some((salt, reason, names)), Some(digest)) => {
            if chain::personal_digest(salt, reason, names).as_slice() == digest {
                Ok(())
            } else {
                Err(Break::PersonalDataAltered)
            }
        }
        // Erased (or never had any): the digest in the entry still carries the chain.
        (None, _) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn fields(n: u128, digest: Option<&[u8]>) -> Fields<'_> {
        Fields {
            id: Uuid::from_u128(n),
            community_id: Uuid::from_u128(99),
            occurred_at_micros: n as i64,
            actor: "system:gateway",
            action: "community.created",
            target: "community:99",
            before: None,
            after: None,
            correlation_id: None,
            personal_digest: digest,
        }
    }

    /// Hashes of a valid chain of `n` entries.
    fn hashes(n: i64) -> Vec<Hash> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|seq| {
                prev = chain::link(&prev, seq, &chain::canonical(&fields(seq as u128, None)));
                prev
            })
            .collect()
    }

    fn run(hashes: &[Hash], seqs: &[i64]) -> Result<i64, (i64, Break)> {
        let mut v = Verifier::new();
        for &seq in seqs {
            let stored = Stored {
                seq,
                fields: fields(seq as u128, None),
                hash: &hashes[(seq - 1) as usize],
                personal: None,
            };
            v.push(&stored)?;
        }
        let last = hashes.last().map(|h| (hashes.len() as i64, h.as_slice()));
        v.finish(last)
    }

    #[test]
    fn an_intact_chain_counts_its_entries() {
        assert_eq!(run(&hashes(3), &[1, 2, 3]), Ok(3));
        assert_eq!(Verifier::new().finish(None), Ok(0));
    }

    #[test]
    fn a_gap_or_a_removed_tail_is_named_by_sequence() {
        assert_eq!(run(&hashes(3), &[1, 3]), Err((2, Break::Missing)));
        assert_eq!(
            run(&hashes(3), &[1, 2]),
            Err((3, Break::Truncated { head_seq: 3 }))
        );
    }

    #[test]
    fn a_changed_hash_is_named_at_that_entry() {
        let mut h = hashes(3);
        h[1][0] ^= 1;
        assert_eq!(run(&h, &[1, 2, 3]), Err((2, Break::HashMismatch)));
    }

    #[test]
    fn erased_personal_data_verifies_and_altered_does_not() {
        let salt = [3u8; 16];
        let names = vec!["alice".to_owned()];
        let digest = chain::personal_digest(&salt, Some("spam"), &names);
        let hash = chain::link(&GENESIS, 1, &chain::canonical(&fields(1, Some(&digest))));
        let entry = |personal| Stored {
            seq: 1,
            fields: fields(1, Some(&digest)),
            hash: &hash,
            personal,
        };
        assert!(
            Verifier::new()
                .push(&entry(Some((&salt, Some("spam"), &names))))
                .is_ok()
        );
        assert!(Verifier::new().push(&entry(None)).is_ok(), "erased");
        assert_eq!(
            Verifier::new().push(&entry(Some((&salt, Some("ham"), &names)))),
            Err((1, Break::PersonalDataAltered))
        );
    }
}
