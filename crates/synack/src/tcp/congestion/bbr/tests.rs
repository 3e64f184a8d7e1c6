//! BBR, segment by segment in virtual time.
