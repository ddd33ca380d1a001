//! Ethical walls: two segments (groups) whose members must not talk (`block`), or may, but
//! under watch (`monitor`).
//!
//! [`WallIndex`] answers "is there a wall between these two people?" from the enabled walls
//! and the group memberships, in memory. It is part of the policy's snapshot
//! (`policy::Snapshot`): every act between two people is judged there, not here.

use crate::clock::Millis;
use crate::directory::{GroupId, UserId};
use std::collections::{BTreeSet, HashMap};

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
    /// Display name and address of each walled person (for notices and records).
    names: HashMap<UserId, (String, String)>,
}

impl WallIndex {
    /// `memberships`: (group, user); `people`: (user, display name, address), for notices
    /// and violation records.
    pub fn new(
        walls: impl IntoIterator<Item = Wall>,
        memberships: impl IntoIterator<Item = (GroupId, UserId)>,
        people: impl IntoIterator<Item = (UserId, String, String)>,
    ) -> Self {
        let walls: Vec<Wall> = walls.into_iter().filter(|w| w.enabled).collect();
        let walled: BTreeSet<GroupId> = walls.iter().flat_map(|w| [w.group_a, w.group_b]).collect();
        let mut groups_of: HashMap<UserId, BTreeSet<GroupId>> = HashMap::new();
        for (g, u) in memberships {
            if walled.contains(&g) {
                groups_of.entry(u).or_default().insert(g);
            }
        }
        let names =
            people.into_iter().filter(|(u, _, _)| groups_of.contains_key(u)).map(|(u, n, a)| (u, (n, a))).collect();
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

    /// Is `u` in any walled group?
    pub fn is_walled(&self, u: UserId) -> bool {
        self.groups_of.contains_key(&u)
    }

    pub fn name_of(&self, u: UserId) -> String {
        self.names.get(&u).map(|(n, _)| n.clone()).unwrap_or_else(|| "this person".into())
    }

    pub fn address_of(&self, u: UserId) -> String {
        self.names.get(&u).map(|(_, a)| a.clone()).unwrap_or_default()
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
            [(ALICE, "Alice"), (PEGGY, "Peggy"), (TRENT, "Trent")]
                .map(|(u, n)| (u, n.to_string(), format!("{}@example.com", n.to_lowercase()))),
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
}
