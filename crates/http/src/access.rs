//! Who may call each route: one column of the route table (`ROUTES`). The authorization
//! matrix test (`tests/it/authz.rs`) calls every route as every kind of caller and checks
//! the answer against this column, so a route cannot be added without saying who it is for.
//! The handlers enforce it (extractors and checks before the body is read); this is the
//! statement the test holds them to.

/// The callers a route admits. Objects in the path (a conversation, a chat) are checked
/// further by the handler; this is the door before them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Any valid token: people (guests included) and applications.
    Signed,
    /// A signed-in person, guests included; not applications.
    Person,
    /// A signed-in person with an account: not guests, not applications.
    User,
    /// Administrators.
    Admin,
    /// Compliance officers and administrators: walls, violations, disclaimers.
    Officer,
    /// Compliance officers alone: the archive, retention, legal holds, purge.
    ArchiveOfficer,
    /// Auditors, compliance officers and administrators: the audit log.
    Auditor,
    /// Administrators and applications with `alerts:send`.
    AlertSender,
    /// Applications with `alerts:send` (Prometheus Alertmanager's webhook).
    AlertApp,
    /// Administrators and the managers of the queue named in the path.
    QueueManager,
    /// Administrators, and the managers and experts of the queue named in the path.
    QueueStaff,
    /// Administrators and managers of some queue (webhooks; each is then checked against
    /// the queue it is for).
    AnyQueueManager,
}
