//! The schema as it is now: the facts the application reads, in one place. Each
//! names the migration that last set it; a migration that changes one points the
//! name here at its own, and the history stays as it was.

/// The text a contact search matches (lower-case name, email and phone), the
/// expression the trigram index covers on PostgreSQL.
pub use crate::m0003_contact_search::SEARCH_TEXT as CONTACT_SEARCH_TEXT;

/// The contact's columns copied onto each conversation by triggers: the prefix of
/// the copies, and the copy and source column lists for bulk loads.
pub use crate::m0007_contact_copies::{
    PREFIX as CONTACT_COPY_PREFIX, copies as contact_copies, sources as contact_sources,
};

/// The groupings of the maintained conversation counts, and the statements that
/// rebuild an organization's counts.
pub use crate::conversation_counts::{GROUPINGS as COUNT_GROUPINGS, rebuild as rebuild_counts};

/// The statement that moves an organization's conversation versions on (deep-page
/// anchors go stale).
pub use crate::m0005_conversation_versions::bump as bump_conversation_versions;

/// The text a message search matches (its lower-case text), the expression the
/// trigram index covers on PostgreSQL.
pub use crate::m0019_message_search::SEARCH_TEXT as MESSAGE_SEARCH_TEXT;
