//! Reading an export: a validation pass over the whole file, then an applying pass, so bad
//! input changes nothing and neither pass holds more than a line (and one session's window).

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use uuid::Uuid;

use super::line::{self, Entry, Header};
use super::line_reader::LineReader;
use super::report::ImportReport;
use crate::manager::{Imported, MemoryManager};
use crate::model::{Memory, MemoryId, MemoryRecord};
use crate::scope::{check_id, Scope};
use crate::session::{SessionInfo, SessionState};
use crate::{Error, Result};

/// Namespace of the ids given to imported memories whose id another owner already holds.
const REMAP_NAMESPACE: Uuid = Uuid::from_u128(0x6c0d_a5ee_e590_47a1_8d1b_3f7e_0000_0001);

fn open(path: &Path) -> Result<LineReader<BufReader<File>>> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    Ok(LineReader::new(BufReader::new(file)))
}

/// Imports the export at `path` into `tenant` (whatever tenant the file names): validates
/// every line first, so a truncated, foreign or malformed file is an error naming its line and
/// changes nothing; then stores each memory, history and session, skipping what is already
/// there exactly so (re-importing a file changes nothing). Vectors are reused when the file's
/// embedder fingerprint equals this one's, else every memory is embedded again.
pub fn import_file(manager: &MemoryManager, tenant: &str, path: &Path) -> Result<ImportReport> {
    check_id("tenant", tenant)?;
    let checked = Pass::new(manager, tenant, false).run(&mut open(path)?)?;
    manager.within_quota(tenant, checked.new_memories, || {
        Pass::new(manager, tenant, true)
            .run(&mut open(path)?)
            .map(|done| done.report)
    })
}

/// One pass over a file: checking only, or checking and applying.
struct Pass<'m> {
    manager: &'m MemoryManager,
    tenant: &'m str,
    apply: bool,
    header: Option<Header>,
    report: ImportReport,
    /// Memories the checking pass found absent: what the quota must allow.
    new_memories: usize,
    /// The session whose turn lines are being read, with its window so far.
    session: Option<(u64, SessionState)>,
    /// Ids taken by another owner, and what they were stored as instead.
    remapped: HashMap<MemoryId, MemoryId>,
}

impl<'m> Pass<'m> {
    fn new(manager: &'m MemoryManager, tenant: &'m str, apply: bool) -> Self {
        Pass {
            manager,
            tenant,
            apply,
            header: None,
            report: ImportReport::default(),
            new_memories: 0,
            session: None,
            remapped: HashMap::new(),
        }
    }

    fn run<R: BufRead>(mut self, lines: &mut LineReader<R>) -> Result<Self> {
        let Some((first, text)) = lines.next_line()? else {
            return Err(Error::invalid(
                "line 1",
                "the file is empty, not a Coda export",
            ));
        };
        let (kind, object) = line::split(first, &text)?;
        if kind != "header" {
            return Err(Error::invalid(
                format!("line {first}"),
                format!("is a `{kind}` line; a Coda export starts with its header"),
            ));
        }
        let header = line::header(first, object)?;
        if let Some(user) = &header.user_id {
            check_id(&format!("line {first}: user_id"), user)?;
        }
        self.header = Some(header);
        let mut count = 0u64;
        loop {
            let Some((number, text)) = lines.next_line()? else {
                return Err(Error::invalid(
                    format!("line {}", lines.number()),
                    format!(
                        "the file ends after {count} lines without its `end` line: \
                         it was cut short"
                    ),
                ));
            };
            let (kind, object) = line::split(number, &text)?;
            let entry = line::entry(number, &kind, object)?;
            if let Entry::End { count: expected } = entry {
                if expected != count {
                    return Err(Error::invalid(
                        format!("line {number}"),
                        format!("the end line counts {expected} lines but {count} precede it"),
                    ));
                }
                self.finish_session()?;
                if let Some((extra, _)) = lines.next_line()? {
                    return Err(Error::invalid(
                        format!("line {extra}"),
                        "follows the end line",
                    ));
                }
                self.report.lines = count;
                return Ok(self);
            }
            count += 1;
            self.entry(number, entry)?;
        }
    }

    fn at(number: u64) -> String {
        format!("line {number}")
    }

    /// The scope of `user` in the importing tenant, checking the header's user.
    fn user_scope(&self, number: u64, user: &str) -> Result<Scope> {
        if let Some(expected) = self.header.as_ref().and_then(|h| h.user_id.as_deref()) {
            if expected != user {
                return Err(Error::invalid(
                    Self::at(number),
                    format!("belongs to user `{user}` but the header exports user `{expected}`"),
                ));
            }
        }
        Scope::parse(self.tenant, Some(user), None, None)
            .map_err(|e| Error::invalid(Self::at(number), e.to_string()))
    }

    fn entry(&mut self, number: u64, entry: Entry) -> Result<()> {
        if !matches!(entry, Entry::Turn { .. }) {
            self.finish_session()?;
        }
        match entry {
            Entry::Memory { memory, embedding } => self.memory(number, memory, embedding),
            Entry::History {
                memory_id,
                versions,
            } => self.history(number, memory_id, versions),
            Entry::Session(info) => self.start_session(number, info),
            Entry::Turn {
                session_id,
                user_id,
                turn,
            } => {
                let window = self.manager.config().memory.short_term_max_turns.max(1);
                match &mut self.session {
                    Some((_, state))
                        if state.info.session_id == session_id && state.info.user_id == user_id =>
                    {
                        state.turns.push_back(turn);
                        while state.turns.len() > window {
                            state.turns.pop_front();
                        }
                        Ok(())
                    }
                    _ => Err(Error::invalid(
                        Self::at(number),
                        format!(
                            "a turn of session `{session_id}` (user `{user_id}`) must follow \
                             that session's line"
                        ),
                    )),
                }
            }
            Entry::End { .. } => Ok(()),
        }
    }

    /// Checks a memory as the API would, in the importing tenant.
    fn check_memory(&self, number: u64, memory: &mut Memory) -> Result<Scope> {
        let named = |e: Error| Error::invalid(Self::at(number), e.to_string());
        let scope = self.user_scope(number, &memory.user_id)?;
        memory.tenant = self.tenant.to_owned();
        for (field, id) in [
            ("agent_id", &memory.agent_id),
            ("session_id", &memory.session_id),
            ("slot", &memory.slot),
        ] {
            if let Some(id) = id {
                check_id(field, id).map_err(named)?;
            }
        }
        if memory.content.trim().is_empty() {
            return Err(Error::invalid(Self::at(number), "`content` is empty"));
        }
        let max = self.manager.config().memory.max_content_bytes;
        if memory.content.len() > max {
            return Err(Error::invalid(
                Self::at(number),
                format!(
                    "`content` is {} bytes; the limit is {max}",
                    memory.content.len()
                ),
            ));
        }
        if !(0.0..=1.0).contains(&memory.metadata.importance) {
            return Err(Error::invalid(
                Self::at(number),
                "`metadata.importance` is outside [0, 1]",
            ));
        }
        for key in ["user_id", "agent_id", "session_id"] {
            if memory.metadata.extra.contains_key(key) {
                return Err(Error::invalid(
                    Self::at(number),
                    format!("`metadata.{key}` is reserved; give `{key}` at the top level"),
                ));
            }
        }
        Ok(scope)
    }

    /// The vector to store: the file's when its embedder is this one, else a new one.
    fn vector(
        &mut self,
        number: u64,
        memory: &Memory,
        given: Option<Vec<f32>>,
    ) -> Result<Vec<f32>> {
        let embedder = self.manager.embedder();
        let same = self
            .header
            .as_ref()
            .and_then(|h| h.embedder.as_ref())
            .is_some_and(|e| e.fingerprint == embedder.fingerprint());
        match given {
            Some(v) if same => {
                if v.len() != embedder.dims() {
                    return Err(Error::invalid(
                        Self::at(number),
                        format!(
                            "`embedding` has {} dimensions; the header's embedder has {}",
                            v.len(),
                            embedder.dims()
                        ),
                    ));
                }
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                if (norm - 1.0).abs() > 1e-3 {
                    return Err(Error::invalid(
                        Self::at(number),
                        format!("`embedding` has length {norm}; vectors are L2-normalised"),
                    ));
                }
                Ok(v)
            }
            _ if !self.apply => Ok(Vec::new()),
            _ => {
                self.report.memories_reembedded += 1;
                embedder.embed(&memory.content)
            }
        }
    }

    fn remap(&self, scope: &Scope, id: MemoryId) -> MemoryId {
        let name = format!("{}/{}/{id}", scope.tenant(), scope.user_id());
        Uuid::new_v5(&REMAP_NAMESPACE, name.as_bytes())
    }

    fn memory(&mut self, number: u64, mut memory: Memory, given: Option<Vec<f32>>) -> Result<()> {
        let scope = self.check_memory(number, &mut memory)?;
        let embedding = self.vector(number, &memory, given)?;
        let backend = self.manager.backend();
        if !self.apply {
            if backend.get(&scope, memory.id)?.is_none() {
                self.new_memories += 1;
            }
            return Ok(());
        }
        let handle = self.manager.scope(scope.clone());
        if let Some(id) = self.remapped.get(&memory.id) {
            memory.id = *id;
        }
        let original = memory.id;
        let outcome = match handle.import_memory(MemoryRecord {
            memory: memory.clone(),
            embedding: embedding.clone(),
        }) {
            Err(Error::Invalid { field, .. }) if field == "id" => {
                // Another owner holds this id: store the memory under one derived from it, the
                // same every time, so a re-import finds it.
                memory.id = self.remap(&scope, original);
                self.remapped.insert(original, memory.id);
                self.report.ids_remapped += 1;
                handle.import_memory(MemoryRecord { memory, embedding })
            }
            other => other,
        }
        .map_err(|e| Error::invalid(Self::at(number), e.to_string()))?;
        match outcome {
            Imported::Added => self.report.memories_added += 1,
            Imported::Updated => self.report.memories_updated += 1,
            Imported::Unchanged => self.report.memories_unchanged += 1,
        }
        Ok(())
    }

    fn history(
        &mut self,
        number: u64,
        memory_id: MemoryId,
        mut versions: Vec<crate::history::Version>,
    ) -> Result<()> {
        let user = versions
            .last()
            .map(|v| v.memory.user_id.clone())
            .unwrap_or_default();
        let scope = self.user_scope(number, &user)?;
        for version in &mut versions {
            if version.memory.user_id != user {
                return Err(Error::invalid(
                    Self::at(number),
                    "its versions belong to different users",
                ));
            }
            version.memory.tenant = self.tenant.to_owned();
        }
        if !self.apply {
            return Ok(());
        }
        let handle = self.manager.scope(scope.clone());
        let with_id = |versions: &mut Vec<crate::history::Version>, id: MemoryId| {
            for version in versions.iter_mut() {
                version.memory.id = id;
            }
        };
        if let Some(id) = self.remapped.get(&memory_id).copied() {
            with_id(&mut versions, id);
        }
        let outcome = match handle.import_history(versions.clone()) {
            Err(Error::Invalid { field, .. }) if field == "id" => {
                let id = self.remap(&scope, memory_id);
                self.remapped.insert(memory_id, id);
                self.report.ids_remapped += 1;
                with_id(&mut versions, id);
                handle.import_history(versions)
            }
            other => other,
        };
        match outcome {
            Ok(Imported::Unchanged) => self.report.histories_unchanged += 1,
            Ok(_) => self.report.histories_imported += 1,
            Err(Error::Unavailable(_)) => self.report.histories_skipped += 1,
            Err(e) => return Err(Error::invalid(Self::at(number), e.to_string())),
        }
        Ok(())
    }

    fn start_session(&mut self, number: u64, mut info: SessionInfo) -> Result<()> {
        let scope = self.user_scope(number, &info.user_id)?;
        let named = |e: Error| Error::invalid(Self::at(number), e.to_string());
        if info.session_id != crate::scope::DEFAULT_ID {
            check_id("session_id", &info.session_id).map_err(named)?;
        }
        if let Some(agent) = &info.agent_id {
            check_id("agent_id", agent).map_err(named)?;
        }
        info.tenant = scope.tenant().to_owned();
        if let Some(existing) = self.manager.backend().session(&info.key())? {
            if existing.user_id != info.user_id {
                return Err(Error::invalid(
                    Self::at(number),
                    format!(
                        "session `{}` belongs to another user of this tenant",
                        info.session_id
                    ),
                ));
            }
        }
        self.session = Some((
            number,
            SessionState {
                info,
                turns: VecDeque::new(),
            },
        ));
        Ok(())
    }

    fn finish_session(&mut self) -> Result<()> {
        let Some((number, state)) = self.session.take() else {
            return Ok(());
        };
        if !self.apply {
            return Ok(());
        }
        let scope = self.user_scope(number, &state.info.user_id)?;
        match self
            .manager
            .scope(scope)
            .import_session(state)
            .map_err(|e| Error::invalid(Self::at(number), e.to_string()))?
        {
            Imported::Added => self.report.sessions_added += 1,
            Imported::Updated => self.report.sessions_updated += 1,
            Imported::Unchanged => self.report.sessions_unchanged += 1,
        }
        Ok(())
    }
}
