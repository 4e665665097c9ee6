//! Mail-system and mail-provider records other than Postfix's and Postmark's (which has its own module,
//! `crate::postfix`, whose per-message state and row builder these share).

pub mod exchange;
pub mod exim;
pub mod gmail;
pub mod m365;
pub mod sendmail;
pub mod ses;
pub mod zeek;
