//! What the wrapper seals and opens with: the core [`Sealer`]/[`Opener`] (in memory), or, with
//! the `store` feature, `mqseal-store`'s [`PersistentSealer`]/[`PersistentOpener`] whose
//! sequence numbers and replay windows survive restarts.
//!
//! [`PersistentSealer`]: mqseal_store::PersistentSealer
//! [`PersistentOpener`]: mqseal_store::PersistentOpener

use mqseal::{Delivery, Opened, Opener, SealOptions, Sealer};

use crate::error::Error;

/// Something that seals (and owns a sender's sequence counter).
pub trait SealBackend: Send + 'static {
    /// The sealed length of a `payload_len`-byte payload, or `None` if no key covering `topic`
    /// can be used (none held, or none valid at the options' time).
    fn sealed_len(&self, topic: &str, payload_len: usize, options: &SealOptions) -> Option<usize>;
    /// Seals, consuming one sequence number.
    fn seal(
        &mut self,
        topic: &str,
        payload: &[u8],
        options: &SealOptions,
    ) -> Result<Vec<u8>, Error>;
}

/// Why an [`OpenBackend`] did not deliver a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenFailure {
    /// The message was refused (definitively): a core error.
    Refused(mqseal::Error),
    /// The message could not be recorded durably (disk full, I/O error…): it is neither
    /// delivered nor acknowledged, so the broker may deliver it again after a reconnect.
    Storage(String),
}

/// Something that opens (and owns the replay windows).
pub trait OpenBackend: Send + 'static {
    /// Opens a delivery; on success its acceptance is recorded (durably, for persistent ones).
    fn open(
        &mut self,
        topic: &str,
        message: &[u8],
        delivery: &Delivery,
    ) -> Result<Opened, OpenFailure>;
}

impl SealBackend for Sealer {
    fn sealed_len(&self, topic: &str, payload_len: usize, options: &SealOptions) -> Option<usize> {
        Sealer::sealed_len(self, topic, payload_len, options)
    }

    fn seal(
        &mut self,
        topic: &str,
        payload: &[u8],
        options: &SealOptions,
    ) -> Result<Vec<u8>, Error> {
        Ok(self.seal_with(topic, payload, options)?)
    }
}

impl OpenBackend for Opener {
    fn open(
        &mut self,
        topic: &str,
        message: &[u8],
        delivery: &Delivery,
    ) -> Result<Opened, OpenFailure> {
        self.open_delivered(topic, message, delivery)
            .map_err(OpenFailure::Refused)
    }
}

#[cfg(feature = "store")]
mod store {
    use super::*;
    use mqseal_store::{PersistentOpener, PersistentSealer, StoreError};

    impl SealBackend for PersistentSealer {
        fn sealed_len(
            &self,
            topic: &str,
            payload_len: usize,
            options: &SealOptions,
        ) -> Option<usize> {
            self.sealer().sealed_len(topic, payload_len, options)
        }

        fn seal(
            &mut self,
            topic: &str,
            payload: &[u8],
            options: &SealOptions,
        ) -> Result<Vec<u8>, Error> {
            self.seal_with(topic, payload, options)
                .map_err(|e| match e {
                    StoreError::Core(core) => Error::Seal(core),
                    other => Error::Sequence(other.to_string()),
                })
        }
    }

    impl OpenBackend for PersistentOpener {
        fn open(
            &mut self,
            topic: &str,
            message: &[u8],
            delivery: &Delivery,
        ) -> Result<Opened, OpenFailure> {
            self.open_delivered(topic, message, delivery)
                .map_err(|e| match e {
                    StoreError::Core(core) => OpenFailure::Refused(core),
                    other => OpenFailure::Storage(other.to_string()),
                })
        }
    }
}
