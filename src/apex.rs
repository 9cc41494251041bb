//! What the Apex API fixes for every path, whichever layer serves it.

/// Default and maximum page size on every Apex path.
pub const PAGE_DEFAULT: u64 = 10;
pub const PAGE_MAX: u64 = 50;
