//! Switchboard's domain core.
//!
//! Directory, presence, conversations, the message pipeline and the storage port. This crate
//! does no I/O: no sockets, no database, no async runtime. Time comes from an injected
//! [`Clock`], so every state machine here is deterministic and testable in memory.

pub mod alerts;
pub mod archive;
pub mod clock;
pub mod conversation;
pub mod directory;
pub mod disclaimers;
pub mod error;
pub mod form;
pub mod hours;
pub mod pipeline;
pub mod policy;
pub mod presence;
pub mod queue;
pub mod ratelimit;
pub mod store;
pub mod text;
pub mod walls;

pub use clock::{Clock, ManualClock, Millis};
pub use conversation::{Conversation, ConversationId, ConversationKind, Event, EventId, EventKind, NewEvent};
pub use directory::{Address, Group, GroupId, Role, User, UserId};
pub use error::{CoreError, StoreError};
pub use presence::{Presence, PresenceBook, PresenceState, SessionKey};
