//! Ethical walls: two segments (groups) whose members must not talk (`block`), or may, but
//! under watch (`monitor`).
//!
//! [`WallIndex`] answers "is there a wall between these two people?" from the enabled walls
//! and the group memberships, in memory. [`WallPolicy`] is the message pipeline's check: a
//! message into a conversation with someone walled off from the sender is refused (`block`)
//! or flagged (`monitor`). Conversation creation, invitations, queue routing and directory
//! look-ups ask the index directly.

use crate::clock::Millis;
use crate::directory::{GroupId, UserId};
use crate::pipeline::{Policy, Submission, Verdict};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WallMode {
    Monitor,
    Block,
}

impl WallMode {
    pub fn as_str(self) -> &'static str {
        match self {
            WallMode::Block => "block",
            WallMode::Monitor => "monitor",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "block" => Some(WallMode::Block),
            "monitor" => Some(WallMode::Monitor),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wall {
    pub id: i64,
    pub name: String,
    pub group_a: GroupId,
    pub group_b: GroupId,
    pub mode: WallMode,
    /// Walls are disabled, never deleted.
    pub enabled: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A wall crossed: refused (`blocked`) or let through and recorded (`flagged`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub id: i64,
    pub ts: Millis,
    pub wall: i64,
    pub mode: WallMode,
    /// `blocked` or `flagged`.
    pub action: String,
    /// Who tried (started, invited, wrote).
    pub actor: UserId,
    /// Who is on the other side of the wall.
    pub other: UserId,
    pub conversation: Option<i64>,
    pub detail: String,
}

/// The notice a sender gets when a wall blocks them.
pub fn blocked_notice(other_name: &str) -> String {
    format!("Chats with {other_name} have been prohibited by your administrator.")
}

/// Enabled walls and who is in their groups.
#[derive(Debug, Clone, Default)]
pub struct WallIndex {
    walls: Vec<Wall>,
    groups_of: HashMap<UserId, BTreeSet<GroupId>>,
    names: HashMap<UserId, String>,
}

impl WallIndex {
    /// `memberships`: (group, user); `names`: display names of users (for notices).
    pub fn new(
        walls: impl IntoIterator<Item = Wall>,
        memberships: impl IntoIterator<Item = (GroupId, UserId)>,
        names: impl IntoIterator<Item = (UserId, String)>,
    ) -> Self {
        let walls: Vec<Wall> = walls.into_iter().filter(|w| w.enabled).collect();
        let walled: BTreeSet<GroupId> = walls.iter().flat_map(|w| [w.group_a, w.group_b]).collect();
        let mut groups_of: HashMap<UserId, BTreeSet<GroupId>> = HashMap::new();
        for (g, u) in memberships {
            if walled.contains(&g) {
                groups_of.entry(u).or_default().insert(g);
            }
        }
        let names = names.into_iter().filter(|(u, _)| groups_of.contains_key(u)).collect();
        Self { walls, groups_of, names }
    }

    pub fn is_empty(&self) -> bool {
        self.walls.is_empty()
    }

    /// The strictest wall between `a` and `b` (a block before a monitor), if any.
    pub fn between(&self, a: UserId, b: UserId) -> Option<&Wall> {
        if a == b || self.walls.is_empty() {
            return None;
        }
        let (ga, gb) = (self.groups_of.get(&a)?, self.groups_of.get(&b)?);
        self.walls
            .iter()
            .filter(|w| {
                (ga.contains(&w.group_a) && gb.contains(&w.group_b))
                    || (ga.contains(&w.group_b) && gb.contains(&w.group_a))
            })
            .max_by_key(|w| (w.mode, std::cmp::Reverse(w.id)))
    }

    /// Walls between `a` and any of `others`: (the other person, the wall), strictest first.
    pub fn among(&self, a: UserId, others: impl IntoIterator<Item = UserId>) -> Vec<(UserId, &Wall)> {
        let mut out: Vec<(UserId, &Wall)> = others.into_iter().filter_map(|o| Some((o, self.between(a, o)?))).collect();
        out.sort_by_key(|(_, w)| std::cmp::Reverse(w.mode));
        out
    }

    /// May `a` see `b` at all (directory, presence)? Not across a blocking wall.
    pub fn visible(&self, a: UserId, b: UserId) -> bool {
        self.between(a, b).is_none_or(|w| w.mode != WallMode::Block)
    }

    pub fn name_of(&self, u: UserId) -> String {
        self.names.get(&u).cloned().unwrap_or_else(|| "this person".into())
    }
}

/// The walls as a pipeline policy, reading the index the runtime keeps current.
pub struct WallPolicy(pub Arc<RwLock<Arc<WallIndex>>>);

impl Policy for WallPolicy {
    fn name(&self) -> &'static str {
        "ethical_wall"
    }

    fn check(&self, s: &Submission<'_>) -> Verdict {
        let index = self.0.read().unwrap_or_else(|e| e.into_inner()).clone();
        let others = s.conversation.members.iter().map(|m| m.id);
        match index.among(s.sender.id, others).first() {
            Some((other, w)) if w.mode == WallMode::Block => Verdict::Block(blocked_notice(&index.name_of(*other))),
            Some((other, w)) => Verdict::Flag(format!("wall {} ({}) with user {}", w.id, w.name, other.0)),
            None => Verdict::Allow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENG: GroupId = GroupId(1);
    const FIN: GroupId = GroupId(2);
    const LEGAL: GroupId = GroupId(3);
    const ALICE: UserId = UserId(1); // engineering
    const PEGGY: UserId = UserId(2); // finance
    const TRENT: UserId = UserId(3); // legal
    const BOTH: UserId = UserId(4); // engineering and finance

    fn wall(id: i64, a: GroupId, b: GroupId, mode: WallMode, enabled: bool) -> Wall {
        Wall { id, name: format!("w{id}"), group_a: a, group_b: b, mode, enabled, created_at: 0, updated_at: 0 }
    }

    fn index(walls: Vec<Wall>) -> WallIndex {
        WallIndex::new(
            walls,
            [(ENG, ALICE), (FIN, PEGGY), (LEGAL, TRENT), (ENG, BOTH), (FIN, BOTH)],
            [(ALICE, "Alice".to_string()), (PEGGY, "Peggy".to_string()), (TRENT, "Trent".to_string())],
        )
    }

    #[test]
    fn walls_work_both_ways_and_block_beats_monitor() {
        let i = index(vec![wall(1, ENG, FIN, WallMode::Monitor, true), wall(2, FIN, ENG, WallMode::Block, true)]);
        assert_eq!(i.between(ALICE, PEGGY).map(|w| w.id), Some(2));
        assert_eq!(i.between(PEGGY, ALICE).map(|w| w.id), Some(2));
        assert!(i.between(ALICE, TRENT).is_none());
        assert!(!i.visible(ALICE, PEGGY) && i.visible(ALICE, TRENT));
        assert!(i.between(ALICE, ALICE).is_none());
        assert_eq!(i.between(BOTH, ALICE).map(|w| w.id), Some(2), "in both segments: walled from each side");
        assert_eq!(i.name_of(PEGGY), "Peggy");
    }

    #[test]
    fn disabled_walls_do_nothing() {
        let i = index(vec![wall(1, ENG, FIN, WallMode::Block, false)]);
        assert!(i.is_empty() && i.between(ALICE, PEGGY).is_none());
    }

    #[test]
    fn the_policy_blocks_or_flags_messages() {
        use crate::conversation::{Conversation, ConversationId, ConversationKind, Member};
        use crate::directory::{Address, Role, User};
        use crate::pipeline::Door;
        let user = |id: UserId, name: &str| User {
            id,
            address: Address::parse(&format!("{name}@example.com")).unwrap(),
            display_name: name.into(),
            email: String::new(),
            locale: "en".into(),
            roles: vec![Role::User],
            disabled: false,
        };
        let (alice, peggy, trent) = (user(ALICE, "alice"), user(PEGGY, "peggy"), user(TRENT, "trent"));
        let conv = Conversation {
            id: ConversationId(1),
            kind: ConversationKind::Group,
            title: String::new(),
            members: [&alice, &peggy, &trent].iter().map(|u| Member { id: u.id, address: u.address.clone() }).collect(),
            created_at: 0,
        };
        let shared = Arc::new(RwLock::new(Arc::new(index(vec![wall(7, ENG, FIN, WallMode::Block, true)]))));
        let policy = WallPolicy(shared.clone());
        let s = Submission { door: Door::Rest, sender: &alice, conversation: &conv, body: "hi" };
        assert_eq!(
            policy.check(&s),
            Verdict::Block("Chats with Peggy have been prohibited by your administrator.".into())
        );
        *shared.write().unwrap() = Arc::new(index(vec![wall(7, ENG, FIN, WallMode::Monitor, true)]));
        assert!(matches!(policy.check(&s), Verdict::Flag(_)));
        let s = Submission { sender: &trent, ..s };
        assert_eq!(policy.check(&s), Verdict::Allow);
    }
}
