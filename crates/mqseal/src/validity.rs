//! Key validity: the period `[not_before, not_after]` during which a tree key may be used
//! (spec sections 4.1, 6 step 2, 7.1 step 4 and 8).

use crate::error::{Error, Result};

/// When a [`TreeKey`](crate::TreeKey) may be used, in seconds since the Unix epoch, both ends
/// inclusive: from `not_before` (0: always) to `not_after` (`None`: never expires).
///
/// The issuer signs it into the grant with the key (spec section 8). Sealers never use a key
/// outside it ([`Error::KeyExpired`]); a key whose `not_before` is in the future is held but not
/// used until then, so the next epoch can be granted ahead of time and every sealer switches to
/// it at `not_before` by itself. Receivers refuse messages under a key outside
/// `[not_before − max_future_skew, not_after + validity_grace]` ([`Error::KeyExpired`], see
/// [`OpenPolicy`](crate::OpenPolicy)). Without any clock a key with a limit cannot be used.
///
/// ```
/// use mqseal::{Error, Validity};
/// let v = Validity::new(1_000, Some(2_000)).unwrap();
/// assert!(v.contains(1_000) && v.contains(2_000) && !v.contains(2_001));
/// assert_eq!(Validity::new(5, Some(4)).unwrap_err(), Error::Malformed);
/// assert_eq!(Validity::starting(1_000, 3_600).unwrap().not_after(), Some(4_600));
/// assert!(Validity::ALWAYS.contains(0) && !Validity::ALWAYS.is_limited());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Validity {
    not_before: u64,
    not_after: Option<u64>,
}

/// Where a time lies relative to a key's validity, as a sealer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Known to be before `not_before`: the key is not used yet.
    Pending,
    /// Inside the validity (or the key has no limit).
    Valid,
    /// Known to be after `not_after`, or the key has a limit and no time is known.
    Unusable,
}

impl Validity {
    /// No limit: valid from the beginning of time, never expires.
    pub const ALWAYS: Validity = Validity {
        not_before: 0,
        not_after: None,
    };

    /// A validity from `not_before` (0: always) to `not_after` (`None`: never), inclusive.
    /// Fails with [`Error::Malformed`] if `not_before > not_after` or `not_after` is 0 (the
    /// grant encodes "never" as 0, spec section 8).
    pub fn new(not_before: u64, not_after: Option<u64>) -> Result<Validity> {
        match not_after {
            Some(0) => Err(Error::Malformed),
            Some(end) if not_before > end => Err(Error::Malformed),
            _ => Ok(Validity {
                not_before,
                not_after,
            }),
        }
    }

    /// Valid from `not_before` for `valid_for` seconds: `not_after = not_before + valid_for`
    /// (saturating). Fails like [`Validity::new`] (`not_before` and `valid_for` both 0).
    pub fn starting(not_before: u64, valid_for: u64) -> Result<Validity> {
        Validity::new(not_before, Some(not_before.saturating_add(valid_for)))
    }

    /// The first second the key may be used (0: always).
    pub fn not_before(&self) -> u64 {
        self.not_before
    }

    /// The last second the key may be used (`None`: never expires).
    pub fn not_after(&self) -> Option<u64> {
        self.not_after
    }

    /// Whether the validity has a limit at either end (such a key needs a clock).
    pub fn is_limited(&self) -> bool {
        self.not_before > 0 || self.not_after.is_some()
    }

    /// Whether `now` lies inside the validity (both ends inclusive).
    pub fn contains(&self, now: u64) -> bool {
        now >= self.not_before && self.not_after.is_none_or(|end| now <= end)
    }

    /// The phase at `now` for a sealer (spec section 6 step 2): without a time, a limited key is
    /// [`Phase::Unusable`], never [`Phase::Pending`], so it still supersedes older epochs of its
    /// filter (fail closed).
    pub(crate) fn phase(&self, now: Option<u64>) -> Phase {
        match now {
            _ if !self.is_limited() => Phase::Valid,
            None => Phase::Unusable,
            Some(t) if t < self.not_before => Phase::Pending,
            Some(t) if self.contains(t) => Phase::Valid,
            Some(_) => Phase::Unusable,
        }
    }

    /// Whether a receiver at `now` accepts a message under a key with this validity (spec
    /// section 7.1 step 4): `not_before − skew ≤ now ≤ not_after + grace`. A limited key with
    /// no known time is refused.
    pub(crate) fn accepts(&self, now: Option<u64>, skew: u64, grace: u64) -> bool {
        if !self.is_limited() {
            return true;
        }
        now.is_some_and(|t| {
            t.saturating_add(skew) >= self.not_before
                && self
                    .not_after
                    .is_none_or(|end| t <= end.saturating_add(grace))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Header, Profile};
    use crate::identity::Identity;
    use crate::keys::{KeyRing, TreeKey};
    use crate::open::{Delivery, OpenPolicy, Opener};
    use crate::seal::{SealOptions, Sealer};
    use alloc::string::String;

    #[test]
    fn construction_rules() {
        assert!(Validity::new(0, None).is_ok());
        assert!(Validity::new(7, Some(7)).is_ok());
        assert_eq!(Validity::new(8, Some(7)), Err(Error::Malformed));
        assert_eq!(Validity::new(0, Some(0)), Err(Error::Malformed));
        assert_eq!(Validity::starting(0, 0), Err(Error::Malformed));
        assert_eq!(
            Validity::starting(u64::MAX - 1, 5).unwrap().not_after(),
            Some(u64::MAX)
        );
        assert_eq!(Validity::default(), Validity::ALWAYS);
    }

    #[test]
    fn phases_for_sealers() {
        let v = Validity::new(100, Some(200)).unwrap();
        assert_eq!(v.phase(Some(99)), Phase::Pending);
        assert_eq!(v.phase(Some(100)), Phase::Valid);
        assert_eq!(v.phase(Some(200)), Phase::Valid);
        assert_eq!(v.phase(Some(201)), Phase::Unusable);
        assert_eq!(v.phase(None), Phase::Unusable);
        assert_eq!(Validity::ALWAYS.phase(None), Phase::Valid);
        let open_ended = Validity::new(100, None).unwrap();
        assert_eq!(open_ended.phase(Some(u64::MAX)), Phase::Valid);
        assert_eq!(open_ended.phase(None), Phase::Unusable);
    }

    fn key(filter: &str, epoch: u32, secret: u8, nb: u64, na: Option<u64>) -> TreeKey {
        TreeKey::from_secret(filter, epoch, [secret; 32])
            .unwrap()
            .with_validity(Validity::new(nb, na).unwrap())
    }

    fn chosen(ring: &KeyRing, topic: &str, now: Option<u64>) -> Result<(String, u32)> {
        ring.best_for(topic, now)
            .map(|(_, k)| (k.filter().as_str().into(), k.epoch()))
    }

    #[test]
    fn sealers_choose_the_current_key_of_the_most_specific_filter() {
        let mut ring = KeyRing::default();
        ring.insert(key("a/#", 1, 1, 0, None));
        ring.insert(key("a/#", 2, 2, 1_000, None)); // granted ahead of time
        let a = |e: u32| Ok(("a/#".into(), e));
        assert_eq!(chosen(&ring, "a/x", Some(999)), a(1));
        assert_eq!(chosen(&ring, "a/x", Some(1_000)), a(2));
        // Without a time the pending key cannot be placed: fail closed, not epoch 1.
        assert_eq!(chosen(&ring, "a/x", None), Err(Error::KeyExpired));
        // An expired current key is never replaced by an older epoch of its filter...
        ring.insert(key("a/#", 3, 3, 0, Some(2_000)));
        assert_eq!(chosen(&ring, "a/x", Some(2_000)), a(3));
        assert_eq!(chosen(&ring, "a/x", Some(2_001)), Err(Error::KeyExpired));
        // ...but a valid key of a less specific filter is used.
        ring.insert(key("#", 1, 4, 0, None));
        assert_eq!(chosen(&ring, "a/x", Some(2_001)), Ok(("#".into(), 1)));
        assert_eq!(chosen(&ring, "a/x", Some(1_500)), a(3));
        assert_eq!(chosen(&ring, "b", None), Ok(("#".into(), 1)));
        assert_eq!(chosen(&ring, "b", Some(0)), Ok(("#".into(), 1)));
        // A filter whose keys are all pending is skipped until they begin.
        ring.insert(key("a/x", 1, 5, 3_000, Some(4_000)));
        assert_eq!(chosen(&ring, "a/x", Some(2_999)), Ok(("#".into(), 1)));
        assert_eq!(chosen(&ring, "a/x", Some(3_000)), Ok(("a/x".into(), 1)));
        let mut lone = KeyRing::default();
        assert_eq!(chosen(&lone, "a", Some(0)), Err(Error::KeyNotFound));
        lone.insert(key("a", 1, 1, 10, None));
        assert_eq!(chosen(&lone, "a", Some(9)), Err(Error::KeyExpired));
        assert_eq!(chosen(&lone, "a", Some(10)), Ok(("a".into(), 1)));
    }

    #[test]
    fn a_sealer_refuses_an_expired_key_and_switches_to_a_granted_ahead_key_at_its_start() {
        let e1 = key("a/#", 1, 1, 0, Some(1_000));
        let e2 = key("a/#", 2, 2, 900, Some(5_000));
        let me = Identity::from_seed([7; 32]);
        let mut sealer = Sealer::new(me.clone(), Profile::Signed, 0);
        sealer.add_key(e1.clone());
        let at = |t| SealOptions::at(false, t);
        assert!(sealer.seal_with("a/b", b"ok", &at(1_000)).is_ok());
        assert_eq!(
            sealer.seal_with("a/b", b"late", &at(1_001)).unwrap_err(),
            Error::KeyExpired
        );
        assert_eq!(sealer.sealed_len("a/b", 1, &at(1_001)), None);
        assert_eq!(sealer.next_seq(), 1, "a refusal consumes no number");
        sealer.add_key(e2.clone());
        let before = sealer.seal_with("a/b", b"1", &at(899)).unwrap();
        let after = sealer.seal_with("a/b", b"2", &at(900)).unwrap();
        let (h1, _) = Header::decode(&before).unwrap();
        let (h2, _) = Header::decode(&after).unwrap();
        assert_eq!((h1.epoch, h2.epoch), (1, 2));
        // Receivers: within [not_before - skew, not_after + grace] only.
        let mut opener = Opener::with_policy(OpenPolicy {
            validity_grace: 100,
            ..OpenPolicy::default()
        });
        opener.trust_sender(me.public());
        opener.add_key(e1);
        opener.add_key(e2);
        let at = |now| Delivery {
            now: Some(now),
            ..Delivery::default()
        };
        assert_eq!(
            opener
                .open_delivered("a/b", &before, &at(1_101))
                .unwrap_err(),
            Error::KeyExpired
        );
        assert!(opener.open_delivered("a/b", &before, &at(1_100)).is_ok());
        assert_eq!(
            opener.open_delivered("a/b", &after, &at(839)).unwrap_err(),
            Error::KeyExpired
        );
        assert!(opener.open_delivered("a/b", &after, &at(840)).is_ok());
    }

    #[test]
    fn without_a_clock_a_limited_key_is_refused_by_sealer_and_receiver() {
        let limited = key("#", 1, 1, 0, Some(u64::MAX));
        let me = Identity::from_seed([8; 32]);
        let mut sealer = Sealer::new(me.clone(), Profile::Signed, 0);
        sealer.add_key(limited.clone());
        let m = sealer
            .seal_with("t", b"x", &SealOptions::without_timestamp(false))
            .unwrap(); // std: the system clock
        let mut opener = Opener::new();
        opener.trust_sender(me.public());
        opener.add_key(limited);
        assert!(opener.open("t", &m).is_ok());
        let mut early = Sealer::new(me, Profile::Signed, 5);
        early.add_key(key("#", 1, 1, u64::MAX, None));
        assert_eq!(early.seal("t", b"x", false).unwrap_err(), Error::KeyExpired);
    }

    #[test]
    fn retirement_is_checked_before_the_validity() {
        let k = key("#", 1, 1, 0, Some(10));
        let me = Identity::from_seed([9; 32]);
        let mut sealer = Sealer::new(me.clone(), Profile::Signed, 0);
        sealer.add_key(k.clone());
        let m = sealer
            .seal_with("t", b"x", &SealOptions::at(false, 5))
            .unwrap();
        let mut opener = Opener::new();
        opener.trust_sender(me.public());
        opener.add_retired_key(k, 20);
        let at = |now| Delivery {
            now: Some(now),
            ..Delivery::default()
        };
        assert_eq!(
            opener.open_delivered("t", &m, &at(21)).unwrap_err(),
            Error::EpochExpired
        );
        assert_eq!(
            opener.open_delivered("t", &m, &at(u64::MAX)).unwrap_err(),
            Error::EpochExpired
        );
        opener.retire_key("#", 1, u64::MAX);
        assert_eq!(
            opener.open_delivered("t", &m, &at(u64::MAX)).unwrap_err(),
            Error::KeyExpired
        );
    }

    #[test]
    fn receivers_allow_skew_before_and_grace_after() {
        let v = Validity::new(1_000, Some(2_000)).unwrap();
        assert!(!v.accepts(Some(939), 60, 10));
        assert!(v.accepts(Some(940), 60, 10));
        assert!(v.accepts(Some(2_010), 60, 10));
        assert!(!v.accepts(Some(2_011), 60, 10));
        assert!(!v.accepts(None, 60, 10));
        assert!(Validity::ALWAYS.accepts(None, 0, 0));
        let late = Validity::new(0, Some(u64::MAX)).unwrap();
        assert!(late.accepts(Some(u64::MAX), 0, u64::MAX));
    }
}
