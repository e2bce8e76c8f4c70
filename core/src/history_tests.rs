use super::*;
use crate::model::Metadata;
use uuid::Uuid;

fn memory(tenant: &str, user: &str, content: &str, id: MemoryId) -> Memory {
    let mut memory = Memory::new(id, content, Metadata::new("fact", 0.5));
    memory.tenant = tenant.into();
    memory.user_id = user.into();
    memory
}

fn write(table: &mut HistoryTable, memory: &Memory) {
    table.record_shared(&Arc::new(memory.clone()));
}

/// `memory` with `content` instead, written to `table` as its next version.
fn rewritten(table: &mut HistoryTable, memory: &Memory, content: &str) -> Memory {
    let mut changed = memory.clone();
    changed.content = content.into();
    write(table, &changed);
    changed
}

fn actions(versions: &[Version]) -> Vec<(u32, Action)> {
    versions.iter().map(|v| (v.version, v.action)).collect()
}

fn scope(tenant: &str, user: &str) -> Scope {
    Scope::parse(tenant, Some(user), None, None).expect("valid scope")
}

#[test]
fn versions_count_up_and_an_unchanged_write_adds_none() {
    let mut table = HistoryTable::new();
    let id = Uuid::new_v4();
    let first = memory("default", "bob", "likes tea", id);
    write(&mut table, &first);
    write(&mut table, &first);
    let second = rewritten(&mut table, &first, "likes green tea");
    let mut third = second.clone();
    third.superseded_by = Some(Uuid::new_v4());
    write(&mut table, &third);
    table.record(&Change::Delete {
        id,
        by: By::Api,
        at: timestamp::now(),
    });
    let versions = table.get(&scope("default", "bob"), id).expect("bob's");
    assert_eq!(
        actions(&versions),
        [
            (1, Action::Add),
            (2, Action::Update),
            (3, Action::Supersede),
            (4, Action::Delete)
        ]
    );
    assert_eq!(versions[1].memory.content, "likes green tea");
    assert_eq!(versions[3].memory.content, "likes green tea");
    assert_eq!(
        (table.len(), table.owner_len(&Owner::new("default", "bob"))),
        (1, 1)
    );
}

#[test]
fn another_owner_never_reads_a_history() {
    let mut table = HistoryTable::new();
    let id = Uuid::new_v4();
    write(&mut table, &memory("acme", "bob", "likes tea", id));
    assert!(table.get(&scope("acme", "bob"), id).is_some());
    assert!(table.get(&scope("acme", "alice"), id).is_none());
    assert!(table.get(&scope("globex", "bob"), id).is_none());
    let mut seen = 0;
    table.visit_owner(&Owner::new("globex", "bob"), &mut |_| seen += 1);
    assert_eq!(seen, 0);
}

#[test]
fn erasing_a_user_drops_only_its_histories() {
    let mut table = HistoryTable::new();
    let (bobs, alices) = (Uuid::new_v4(), Uuid::new_v4());
    write(&mut table, &memory("default", "bob", "likes tea", bobs));
    write(
        &mut table,
        &memory("default", "alice", "likes coffee", alices),
    );
    let bob = Owner::new("default", "bob");
    table.record(&Change::EraseUser(bob.clone()));
    assert_eq!((table.len(), table.owner_len(&bob)), (1, 0));
    assert!(table.get(&scope("default", "bob"), bobs).is_none());
    assert!(table.get(&scope("default", "alice"), alices).is_some());
    // Bob may come back: his new memory starts a new history.
    write(&mut table, &memory("default", "bob", "likes milk", bobs));
    let versions = table
        .get(&scope("default", "bob"), bobs)
        .expect("bob's again");
    assert_eq!(actions(&versions), [(1, Action::Add)]);
    assert_eq!(table.owner_len(&bob), 1);
}

#[test]
fn an_owners_histories_are_visited_by_id() {
    let mut table = HistoryTable::new();
    let mut ids: Vec<MemoryId> = (0..20).map(|_| Uuid::new_v4()).collect();
    for (i, id) in ids.iter().enumerate() {
        write(
            &mut table,
            &memory("default", "bob", &format!("fact {i}"), *id),
        );
    }
    write(
        &mut table,
        &memory("default", "alice", "other", Uuid::new_v4()),
    );
    let mut visited = Vec::new();
    table.visit_owner(&Owner::new("default", "bob"), &mut |v| {
        visited.push(v[0].memory.id)
    });
    ids.sort_unstable();
    assert_eq!(visited, ids);
    let mut all = 0;
    table.visit(&mut |_| all += 1);
    assert_eq!((all, table.all().len()), (21, 21));
}

#[test]
fn a_memory_seen_under_another_owner_starts_afresh_there() {
    let mut table = HistoryTable::new();
    let id = Uuid::new_v4();
    let bobs = memory("default", "bob", "bob's secret", id);
    write(&mut table, &bobs);
    rewritten(&mut table, &bobs, "bob's other secret");
    write(&mut table, &memory("default", "alice", "alice's", id));
    let versions = table.get(&scope("default", "alice"), id).expect("alice's");
    assert_eq!(actions(&versions), [(1, Action::Add)]);
    assert!(versions.iter().all(|v| !v.memory.content.contains("bob")));
    assert!(table.get(&scope("default", "bob"), id).is_none());
    assert_eq!(table.owner_len(&Owner::new("default", "bob")), 0);
    assert_eq!(table.owner_of(id), Some(&Owner::new("default", "alice")));
}

#[test]
fn set_replaces_a_memorys_versions() {
    let mut table = HistoryTable::new();
    let id = Uuid::new_v4();
    write(&mut table, &memory("default", "bob", "likes tea", id));
    let imported = |user: &str, version: u32, action| Version {
        version,
        action,
        at: timestamp::now(),
        by: By::Api,
        memory: memory("default", user, "imported", id),
    };
    table.set(vec![
        imported("bob", 1, Action::Add),
        imported("bob", 2, Action::Update),
    ]);
    let versions = table.get(&scope("default", "bob"), id).expect("bob's");
    assert_eq!(actions(&versions), [(1, Action::Add), (2, Action::Update)]);
    assert_eq!(table.owner_len(&Owner::new("default", "bob")), 1);
    table.set(vec![imported("carol", 1, Action::Add)]);
    assert!(table.get(&scope("default", "bob"), id).is_none());
    assert_eq!(table.owner_len(&Owner::new("default", "bob")), 0);
    assert_eq!(table.owner_len(&Owner::new("default", "carol")), 1);
}

#[test]
fn replacing_a_user_deletes_what_the_new_set_lacks() {
    let mut table = HistoryTable::new();
    let (kept, gone) = (Uuid::new_v4(), Uuid::new_v4());
    let kept_memory = memory("default", "bob", "kept", kept);
    write(&mut table, &kept_memory);
    write(&mut table, &memory("default", "bob", "gone", gone));
    write(
        &mut table,
        &memory("default", "alice", "hers", Uuid::new_v4()),
    );
    table.record(&Change::ReplaceUser {
        owner: Owner::new("default", "bob"),
        records: vec![MemoryRecord {
            memory: kept_memory,
            embedding: Vec::new(),
        }],
    });
    let bob = scope("default", "bob");
    let gone_versions = table.get(&bob, gone).expect("still has a history");
    assert_eq!(
        actions(&gone_versions),
        [(1, Action::Add), (2, Action::Delete)]
    );
    let kept_versions = table.get(&bob, kept).expect("kept");
    assert_eq!(actions(&kept_versions), [(1, Action::Add)]);
    assert_eq!(table.len(), 3);
}
