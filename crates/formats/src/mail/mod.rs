//! Mail-system records other than Postfix's (which has its own module,
//! `crate::postfix`, whose per-message state and row builder these share).

pub mod exim;
