//! Writing an export: lines straight from the backend's visitors, never the whole set in memory.

use std::collections::BTreeSet;
use std::io::Write;

use super::line::{render, EndLine, HistoryLine, MemoryOut, TurnOut};
use super::{base64, EmbedderInfo, Header, FORMAT, VERSION};
use crate::history::Version;
use crate::manager::MemoryManager;
use crate::model::{MemoryId, MemoryRecord};
use crate::scope::Scope;
use crate::session::{SessionKey, SessionState};
use crate::{Error, Result};

/// Writes lines to `out` and counts them, for the `end` line.
pub struct ExportWriter<'w> {
    out: &'w mut dyn Write,
    count: u64,
}

impl<'w> ExportWriter<'w> {
    /// A writer onto `out` that has written nothing.
    pub fn new(out: &'w mut dyn Write) -> Self {
        ExportWriter { out, count: 0 }
    }

    fn put(&mut self, line: &str) -> Result<()> {
        self.out
            .write_all(line.as_bytes())
            .map_err(|e| Error::io("write the export", "", e))
    }

    /// The header line for `manager`'s embedder.
    pub fn header(
        &mut self,
        manager: &MemoryManager,
        tenant: &str,
        user: Option<&str>,
    ) -> Result<()> {
        let embedder = manager.embedder();
        let header = Header {
            format: FORMAT.to_owned(),
            version: VERSION,
            embedder: Some(EmbedderInfo {
                name: embedder.name().to_owned(),
                fingerprint: embedder.fingerprint(),
                dims: embedder.dims(),
            }),
            tenant: Some(tenant.to_owned()),
            user_id: user.map(str::to_owned),
            exported_at: Some(crate::model::timestamp::now()),
        };
        self.put(&render("header", &header)?)
    }

    fn body(&mut self, kind: &str, value: &impl serde::Serialize) -> Result<()> {
        let line = render(kind, value)?;
        self.put(&line)?;
        self.count += 1;
        Ok(())
    }

    /// A memory line.
    pub fn memory(&mut self, record: &MemoryRecord) -> Result<()> {
        let out = MemoryOut {
            memory: &record.memory,
            embedding: base64::encode_f32(&record.embedding),
        };
        self.body("memory", &out)
    }

    /// A history line.
    pub fn history(&mut self, versions: &[Version]) -> Result<()> {
        let Some(first) = versions.first() else {
            return Ok(());
        };
        let line = HistoryLine {
            memory_id: first.memory.id,
            versions: versions.to_vec(),
        };
        self.body("history", &line)
    }

    /// A session line and a turn line for each turn of its window.
    pub fn session(&mut self, state: &SessionState) -> Result<()> {
        self.body("session", &state.info)?;
        for turn in &state.turns {
            let line = TurnOut {
                session_id: &state.info.session_id,
                user_id: &state.info.user_id,
                turn,
            };
            self.body("turn", &line)?;
        }
        Ok(())
    }

    /// Everything of `scope`'s owner: memories, then histories, then sessions.
    ///
    /// The visitors only collect ids (16 bytes a memory); each line is then read and written
    /// with no backend lock held, so a client reading slowly never holds up writers (the
    /// bundled backends' visitors hold locks that writers of every user wait on).
    pub fn owner(&mut self, manager: &MemoryManager, scope: &Scope) -> Result<()> {
        let backend = manager.backend();
        let mut ids: Vec<MemoryId> = Vec::new();
        backend.scan_owner(scope, &mut |record| ids.push(record.memory.id))?;
        for id in ids.drain(..) {
            // Deleted since the scan: not exported.
            if let Some(record) = backend.get(scope, id)? {
                self.memory(&record)?;
            }
        }
        backend.owner_histories(scope, &mut |versions| {
            if let Some(first) = versions.first() {
                ids.push(first.memory.id);
            }
        })?;
        for id in ids {
            if let Some(versions) = backend.history(scope, id)? {
                self.history(&versions)?;
            }
        }
        let mut keys: Vec<SessionKey> = Vec::new();
        backend.owner_sessions(scope, &mut |state| keys.push(state.info.key()))?;
        for key in keys {
            if let Some(state) = backend.session_state(&key)? {
                self.session(&state)?;
            }
        }
        Ok(())
    }

    /// The end line; returns how many lines lie between the header and it.
    pub fn end(mut self) -> Result<u64> {
        let count = self.count;
        self.put(&render("end", &EndLine { count })?)?;
        self.out
            .flush()
            .map_err(|e| Error::io("write the export", "", e))?;
        Ok(count)
    }
}

/// Writes the export of `scope`'s user (the whole user, whatever agent or session the scope
/// names) to `out`; returns the number of lines between header and end.
pub fn export_user(manager: &MemoryManager, scope: &Scope, out: &mut dyn Write) -> Result<u64> {
    let user = scope.whole_user();
    let mut writer = ExportWriter::new(out);
    writer.header(manager, user.tenant(), Some(user.user_id()))?;
    writer.owner(manager, &user)?;
    writer.end()
}

/// Writes the export of every user of `tenant` (those with memories or sessions), one user
/// after another in id order.
pub fn export_tenant(manager: &MemoryManager, tenant: &str, out: &mut dyn Write) -> Result<u64> {
    crate::scope::check_id("tenant", tenant)?;
    let backend = manager.backend();
    let mut users: BTreeSet<String> = backend
        .owners(tenant)?
        .into_iter()
        .map(|(owner, _)| owner.user_id)
        .collect();
    backend.sessions(tenant, &mut |state| {
        if !users.contains(&state.info.user_id) {
            users.insert(state.info.user_id.clone());
        }
    })?;
    let mut writer = ExportWriter::new(out);
    writer.header(manager, tenant, None)?;
    for user in users {
        let scope = Scope::parse(tenant, Some(&user), None, None)?;
        writer.owner(manager, &scope)?;
    }
    writer.end()
}
