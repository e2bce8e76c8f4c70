//! `Coda.toml`, read with figment: file, then `CODA_<SECTION>__<KEY>` environment overrides
//! (SPEC §2). Unknown keys, unknown plugin names and bad values are errors naming the key path.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::registry::{
    self, BackendFactory, EmbedderFactory, PluginKind, SinkFactory, StoreFactory,
};
use crate::{Error, Result};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`: the `coda serve` listener.
    pub server: ServerConfig,
    /// `[memory]`: which backend and embedder, and the manager's limits.
    pub memory: MemoryConfig,
    /// `[backends.<name>]`: options for each backend.
    pub backends: BTreeMap<String, Value>,
    /// `[embedders.<name>]`: options for each embedder.
    pub embedders: BTreeMap<String, Value>,
    /// `[snapshots]`: which store, automatic snapshots and retention.
    pub snapshots: SnapshotsConfig,
    /// `[stores.<name>]`: options for each snapshot store.
    pub stores: BTreeMap<String, Value>,
    /// `[search]`: how memories are ranked.
    pub search: SearchConfig,
    /// `[events]`: duplicate suppression and replay.
    pub events: EventsConfig,
    /// `[[sinks]]`: where events go, each with its `type` and options.
    pub sinks: Vec<SinkConfig>,
    /// `[cluster]`: several nodes on one NATS JetStream stream (SPEC §12).
    pub cluster: crate::cluster::ClusterConfig,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// One address serves `/`, `/ws`, `/api/v1`, `/metrics` and `/healthz`; port 0 picks one.
    pub bind: String,
    /// Admin bearer tokens (any tenant, `/metrics`, `GET /tenants`): plain or
    /// `sha256:<64 hex>`. With no tokens and no tenants there is no authentication.
    pub tokens: Vec<String>,
    /// `Origin` values accepted on `/ws` (empty means any) and the only origins HTTP answers
    /// CORS for (empty means none), so the dashboard can be hosted elsewhere.
    pub allowed_origins: Vec<String>,
    /// Largest accepted HTTP request body.
    pub max_body_bytes: usize,
    /// Largest body `POST /api/v1/import` accepts (spooled to a temporary file, not memory).
    pub max_import_bytes: u64,
    /// Where `POST /api/v1/backup` writes backups: each in a directory of this one.
    pub backup_dir: std::path::PathBuf,
    /// `[[server.tenants]]`: tenants and the tokens that open each (SPEC §9).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<crate::tenant::TenantConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8765".into(),
            tokens: Vec::new(),
            allowed_origins: Vec::new(),
            max_body_bytes: 1 << 20,
            max_import_bytes: 1 << 30,
            backup_dir: "data/backups".into(),
            tenants: Vec::new(),
        }
    }
}

/// `[memory]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// A registered backend.
    pub backend: String,
    /// A registered embedder; the default `auto` is `minilm` when its model is found, else
    /// `hashing` (SPEC §10).
    pub embedder: String,
    /// Turns kept in the short-term window; older turns leave it.
    pub short_term_max_turns: usize,
    /// Persist short-term into long-term every N turns; 0 means only on request.
    pub persist_interval: u64,
    /// Largest accepted memory or turn content.
    pub max_content_bytes: usize,
    /// Seed alias of `stores.<store>.dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_dir: Option<String>,
    /// Seed alias of `snapshots.auto`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_snapshot: Option<bool>,
    /// Seed alias of `snapshots.interval`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_interval: Option<u64>,
    /// A fact or preference filling a slot another one holds supersedes it, and a restatement
    /// adds nothing (SPEC §10).
    pub supersede: bool,
    /// Cosine at or above which a new slot-less memory with the same words (in order, articles
    /// and inflections aside) as one of the same user and type restates it (tests/dedup.rs).
    pub dedup_similarity: f64,
    /// Seconds between sweeps deleting expired memories.
    pub expiry_sweep_s: u64,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            backend: "file".into(),
            embedder: "auto".into(),
            short_term_max_turns: 50,
            persist_interval: 0,
            max_content_bytes: 65536,
            snapshot_dir: None,
            auto_snapshot: None,
            snapshot_interval: None,
            supersede: true,
            dedup_similarity: 0.9,
            expiry_sweep_s: 60,
        }
    }
}

/// `[snapshots]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotsConfig {
    /// A registered snapshot store.
    pub store: String,
    /// Take (and save) a snapshot every `interval` turns.
    pub auto: bool,
    /// Turns between automatic snapshots.
    pub interval: u64,
    /// Keep at most N saved snapshots; 0 keeps all.
    pub retain: usize,
    /// Created-but-unsaved snapshots kept in memory.
    pub in_memory: usize,
}

impl Default for SnapshotsConfig {
    fn default() -> Self {
        SnapshotsConfig {
            store: "fs".into(),
            auto: false,
            interval: 10,
            retain: 0,
            in_memory: 20,
        }
    }
}

/// How a search ranks memories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Cosine similarity of embeddings.
    Vector,
    /// BM25 over the words of the memories.
    Lexical,
    /// Both, combined by `search.fusion`.
    Hybrid,
}

/// How hybrid search combines cosine similarity and the lexical score (see
/// `manager/fusion.rs` for the measurements behind the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchFusion {
    /// A weighted mean of cosine and lexical score in which the lexical weight counts in full
    /// when the best lexical match holds nearly all of the query's words, and otherwise shrinks
    /// with how much of the query is matched and how well the two signals agree.
    Adaptive,
    /// `vector_weight · cosine + lexical_weight · lexical`, the same weights for every query.
    Weighted,
    /// Reciprocal-rank fusion: `vector_weight / (60 + cosine rank) + lexical_weight / (60 +
    /// lexical rank)`.
    Rrf,
}

impl std::str::FromStr for SearchMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "vector" => Ok(SearchMode::Vector),
            "lexical" => Ok(SearchMode::Lexical),
            "hybrid" => Ok(SearchMode::Hybrid),
            other => Err(Error::invalid(
                "mode",
                format!("`{other}` is not one of vector, lexical, hybrid"),
            )),
        }
    }
}

/// `[search]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// The ranking used when a query does not name one.
    pub mode: SearchMode,
    /// How hybrid ranking combines the two signals.
    pub fusion: SearchFusion,
    /// Weight of the cosine similarity in hybrid ranking.
    pub vector_weight: f64,
    /// Weight of the normalised BM25 score in hybrid ranking; with `adaptive` fusion, the most
    /// it gets, for a query whose words a memory holds in full.
    pub lexical_weight: f64,
    /// Weight of a memory's importance added to its score (SPEC §10).
    pub importance_weight: f64,
    /// Weight of recency, `0.5^(age_h / recency_half_life_h)`, added to the score.
    pub recency_weight: f64,
    /// Hours after which the recency part halves.
    pub recency_half_life_h: f64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            mode: SearchMode::Hybrid,
            fusion: SearchFusion::Adaptive,
            // Chosen on tests/data/retrieval_set.json (tests/retrieval.rs): a full lexical match
            // must outweigh a closer embedding, so lexical counts twice the cosine at most.
            vector_weight: 0.5,
            lexical_weight: 1.0,
            importance_weight: 0.0,
            recency_weight: 0.0,
            recency_half_life_h: 168.0,
        }
    }
}

/// `[events]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Recent event hashes remembered for duplicate suppression; 0 disables it.
    pub dedup_window: usize,
    /// Hashes also expire after this many milliseconds; 0 means only by count.
    pub dedup_ttl_ms: u64,
    /// Events kept for replay and resume.
    pub replay_capacity: usize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            dedup_window: 100,
            dedup_ttl_ms: 0,
            replay_capacity: 1000,
        }
    }
}

/// One `[[sinks]]` table: `type` picks the sink, the other keys are its options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SinkConfig {
    /// A registered sink.
    #[serde(rename = "type")]
    pub kind: String,
    /// The sink's options.
    #[serde(flatten)]
    pub options: Map<String, Value>,
}

impl Default for Config {
    /// The built-in defaults, equal to the repository's `Coda.toml`.
    fn default() -> Self {
        let table = |v: Value| match v {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Config {
            server: ServerConfig::default(),
            memory: MemoryConfig::default(),
            backends: BTreeMap::from([(
                "file".to_owned(),
                json!({"dir": "data/memory", "sync": "always", "batch_ms": 1000, "repair": false}),
            )]),
            embedders: BTreeMap::from([("hashing".to_owned(), json!({"dims": 384}))]),
            snapshots: SnapshotsConfig::default(),
            search: SearchConfig::default(),
            stores: BTreeMap::from([
                ("fs".to_owned(), json!({"dir": "data/memory/snapshots"})),
                (
                    "zstd".to_owned(),
                    json!({"dir": "data/memory/snapshots", "level": 3, "key_env": ""}),
                ),
            ]),
            events: EventsConfig::default(),
            cluster: crate::cluster::ClusterConfig::default(),
            sinks: vec![
                SinkConfig {
                    kind: "websocket".into(),
                    options: table(json!({
                        "queue": 1024,
                        "overflow": "drop_oldest",
                        "replay_on_connect": 100,
                        "max_connections": 10000,
                        "max_message_bytes": 65536,
                        "ping_interval_s": 20,
                    })),
                },
                SinkConfig {
                    kind: "log".into(),
                    options: table(json!({"path": "data/events.jsonl"})),
                },
            ],
        }
    }
}

/// Environment variables starting with this prefix override config keys.
pub const ENV_PREFIX: &str = "CODA_";
/// The environment variable naming the config file.
pub const CONFIG_ENV: &str = "CODA_CONFIG";

impl Config {
    /// Reads the configuration: `path` if given, else `$CODA_CONFIG`, else `./Coda.toml` if it
    /// exists, else the defaults; then the `CODA_` environment overrides. Keys and values are
    /// checked here; plugin names and options by [`Config::effective`], which opening Coda runs.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let file = match path {
            Some(p) => Some(p.to_path_buf()),
            None => std::env::var_os(CONFIG_ENV).map(PathBuf::from),
        };
        let figment = match &file {
            Some(p) if !p.exists() => {
                return Err(Error::config(
                    "--config",
                    format!("{} does not exist", p.display()),
                ))
            }
            Some(p) => Figment::new().merge(Toml::file(p)),
            None => Figment::new().merge(Toml::file("Coda.toml")),
        };
        Self::from_figment(figment.merge(env_overrides()))
    }

    /// Parses a configuration from TOML text (no environment), checking keys and values.
    pub fn from_toml_str(toml: &str) -> Result<Config> {
        Self::from_figment(Figment::new().merge(Toml::string(toml)))
    }

    /// Extracts and checks a configuration from user-provided sources layered over the defaults.
    pub fn from_figment(user: Figment) -> Result<Config> {
        let figment = Figment::from(Serialized::defaults(Config::default())).merge(user.clone());
        let mut config: Config = figment.extract().map_err(figment_error)?;
        config.resolve_aliases(&user)?;
        config.validate()?;
        Ok(config)
    }

    /// Folds the seed's alias keys into their canonical keys; setting both is an error.
    fn resolve_aliases(&mut self, user: &Figment) -> Result<()> {
        let store_dir = format!("stores.{}.dir", self.snapshots.store);
        let both = |alias: &str, canonical: &str| {
            Error::config(
                alias,
                format!("is an alias of `{canonical}`, which is also set; set only one"),
            )
        };
        if let Some(dir) = self.memory.snapshot_dir.take() {
            if user.contains(&store_dir) {
                return Err(both("memory.snapshot_dir", &store_dir));
            }
            let options = self
                .stores
                .entry(self.snapshots.store.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(map) = options {
                map.insert("dir".into(), Value::String(dir));
            }
        }
        if let Some(auto) = self.memory.auto_snapshot.take() {
            if user.contains("snapshots.auto") {
                return Err(both("memory.auto_snapshot", "snapshots.auto"));
            }
            self.snapshots.auto = auto;
        }
        if let Some(interval) = self.memory.snapshot_interval.take() {
            if user.contains("snapshots.interval") {
                return Err(both("memory.snapshot_interval", "snapshots.interval"));
            }
            self.snapshots.interval = interval;
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        self.server
            .bind
            .parse::<SocketAddr>()
            .map_err(|e| Error::config("server.bind", format!("`{}`: {e}", self.server.bind)))?;
        let positive = [
            ("server.max_body_bytes", self.server.max_body_bytes),
            (
                "memory.short_term_max_turns",
                self.memory.short_term_max_turns,
            ),
            ("memory.max_content_bytes", self.memory.max_content_bytes),
            ("snapshots.in_memory", self.snapshots.in_memory),
            ("snapshots.interval", self.snapshots.interval as usize),
        ];
        for (path, value) in positive {
            if value == 0 {
                return Err(Error::config(path, "must be at least 1"));
            }
        }
        if self.server.max_import_bytes == 0 {
            return Err(Error::config(
                "server.max_import_bytes",
                "must be at least 1",
            ));
        }
        if self.server.backup_dir.as_os_str().is_empty() {
            return Err(Error::config("server.backup_dir", "must not be empty"));
        }
        for (path, weight) in [
            ("search.vector_weight", self.search.vector_weight),
            ("search.lexical_weight", self.search.lexical_weight),
        ] {
            if !(0.0..=1.0).contains(&weight) {
                return Err(Error::config(path, "must be in [0, 1]"));
            }
        }
        for (path, weight) in [
            ("search.importance_weight", self.search.importance_weight),
            ("search.recency_weight", self.search.recency_weight),
        ] {
            if !(0.0..=10.0).contains(&weight) {
                return Err(Error::config(path, "must be in [0, 10]"));
            }
        }
        let half_life = self.search.recency_half_life_h;
        if !(half_life.is_finite() && half_life > 0.0) {
            return Err(Error::config(
                "search.recency_half_life_h",
                "must be a positive number of hours",
            ));
        }
        if !(0.5..=1.0).contains(&self.memory.dedup_similarity) {
            return Err(Error::config(
                "memory.dedup_similarity",
                "must be in [0.5, 1]",
            ));
        }
        if self.memory.expiry_sweep_s == 0 {
            return Err(Error::config("memory.expiry_sweep_s", "must be at least 1"));
        }
        self.cluster.validate()?;
        crate::tenant::validate(&self.server)
    }

    /// The configuration with every chosen plugin's options checked and their defaults filled
    /// in, as `coda config check` prints it. Option tables for unregistered names are errors.
    pub fn effective(&self) -> Result<Value> {
        let mut shown = self.clone();
        redact_tokens(&mut shown.server);
        let mut out = serde_json::to_value(&shown).map_err(|e| Error::config("", e.to_string()))?;
        out["backends"] = check_tables::<BackendFactory>(
            "backends",
            &self.backends,
            &self.memory.backend,
            "memory.backend",
        )?;
        out["embedders"] = check_tables::<EmbedderFactory>(
            "embedders",
            &self.embedders,
            &self.memory.embedder,
            "memory.embedder",
        )?;
        out["stores"] = check_tables::<StoreFactory>(
            "stores",
            &self.stores,
            &self.snapshots.store,
            "snapshots.store",
        )?;
        let mut sinks = Vec::with_capacity(self.sinks.len());
        for (i, sink) in self.sinks.iter().enumerate() {
            let path = format!("sinks[{i}]");
            let factory = registry::find::<SinkFactory>(&sink.kind)
                .map_err(|e| Error::config(format!("{path}.type"), e.to_string()))?;
            let mut options = factory.check_options(Value::Object(sink.options.clone()), &path)?;
            if let Value::Object(map) = &mut options {
                map.insert("type".into(), Value::String(sink.kind.clone()));
            }
            sinks.push(options);
        }
        out["sinks"] = Value::Array(sinks);
        Ok(out)
    }

    /// Builds the configured snapshot store alone, for tools that work on saved snapshots while
    /// the server is stopped (`coda snapshot ...`).
    pub fn snapshot_store(&self) -> Result<std::sync::Arc<dyn crate::snapshot::SnapshotStore>> {
        let name = &self.snapshots.store;
        registry::find::<StoreFactory>(name)
            .map_err(|e| Error::config("snapshots.store", e.to_string()))?
            .build_with(
                Config::options(&self.stores, name),
                &format!("stores.{name}"),
                &Default::default(),
            )
    }

    /// A snapshot store per configured tenant (other than `default`), each in its own
    /// directory `<dir>/tenants/<id>` of the configured store's `dir` (SPEC §9). A store whose
    /// options have no `dir` gets none: every tenant then shares it, still seeing only its own.
    pub fn tenant_snapshot_stores(
        &self,
    ) -> Result<std::collections::HashMap<String, std::sync::Arc<dyn crate::snapshot::SnapshotStore>>>
    {
        let name = &self.snapshots.store;
        let options = Config::options(&self.stores, name);
        let mut out = std::collections::HashMap::new();
        let Some(dir) = options.get("dir").and_then(Value::as_str) else {
            return Ok(out);
        };
        let factory = registry::find::<StoreFactory>(name)
            .map_err(|e| Error::config("snapshots.store", e.to_string()))?;
        for tenant in &self.server.tenants {
            if tenant.id == crate::scope::DEFAULT_ID {
                continue;
            }
            let mut own = options.clone();
            let tenant_dir = Path::new(dir).join("tenants").join(&tenant.id);
            own["dir"] = Value::String(tenant_dir.to_string_lossy().into_owned());
            let store = factory.build_with(own, &format!("stores.{name}"), &Default::default())?;
            out.insert(tenant.id.clone(), store);
        }
        Ok(out)
    }

    /// The option table for `name` under a plugin section (an empty table when absent).
    pub fn options(section: &BTreeMap<String, Value>, name: &str) -> Value {
        section
            .get(name)
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()))
    }
}

/// Replaces every token by its `sha256:<hex>` form: what `coda config check` prints works as
/// configuration, and never shows a secret.
fn redact_tokens(server: &mut ServerConfig) {
    let redact = |tokens: &mut Vec<String>| {
        for token in tokens.iter_mut() {
            if let Ok(digest) = crate::tenant::TokenDigest::configured(token) {
                *token = digest.display();
            }
        }
    };
    redact(&mut server.tokens);
    for tenant in &mut server.tenants {
        redact(&mut tenant.tokens);
    }
}

/// Checks every option table of one plugin section, and that `chosen` is registered.
fn check_tables<F: PluginKind + CheckOptions>(
    section: &str,
    tables: &BTreeMap<String, Value>,
    chosen: &str,
    chosen_key: &str,
) -> Result<Value> {
    registry::find::<F>(chosen).map_err(|e| Error::config(chosen_key, e.to_string()))?;
    let mut out = Map::new();
    let mut names: Vec<&str> = tables.keys().map(String::as_str).collect();
    if !names.contains(&chosen) {
        names.push(chosen);
    }
    for name in names {
        let path = format!("{section}.{name}");
        let factory = registry::find::<F>(name).map_err(|e| Error::config(&path, e.to_string()))?;
        let checked = factory.check(Config::options(tables, name), &path)?;
        out.insert(name.to_owned(), checked);
    }
    Ok(Value::Object(out))
}

/// Lets [`check_tables`] call `check_options` on any factory kind.
trait CheckOptions {
    fn check(&'static self, options: Value, path: &str) -> Result<Value>;
}

impl<T: ?Sized + 'static, C: 'static> CheckOptions for registry::Factory<T, C> {
    fn check(&'static self, options: Value, path: &str) -> Result<Value> {
        self.check_options(options, path)
    }
}

/// `CODA_<SECTION>__<KEY>` variables; single-underscore names like `CODA_CONFIG` are not keys.
fn env_overrides() -> Env {
    Env::prefixed(ENV_PREFIX)
        .filter(|key| key.as_str().contains("__"))
        .split("__")
}

/// Turns a figment error into [`Error::InvalidConfig`] with the full key path.
fn figment_error(error: figment::Error) -> Error {
    use figment::error::Kind;
    let mut path = error.path.clone();
    let reason = match &error.kind {
        Kind::UnknownField(field, expected) => {
            // figment's path already ends with the field for unknown keys; not for nested maps.
            if path.last() != Some(field) {
                path.push(field.clone());
            }
            if expected.is_empty() {
                "unknown key".to_owned()
            } else {
                format!("unknown key; expected one of: {}", expected.join(", "))
            }
        }
        Kind::MissingField(field) => {
            if path.last().map(String::as_str) != Some(field.as_ref()) {
                path.push(field.to_string());
            }
            "missing key".to_owned()
        }
        other => other.to_string(),
    };
    let source = error
        .metadata
        .as_ref()
        .and_then(|m| m.source.as_ref())
        .map(|s| format!(" (from {s})"))
        .unwrap_or_default();
    Error::config(path.join("."), format!("{reason}{source}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_defaults() {
        assert_eq!(
            Config::from_toml_str("").expect("defaults"),
            Config::default()
        );
    }

    #[test]
    fn unknown_keys_name_their_path() {
        let err = Config::from_toml_str("[memory]\nshort_term_max = 3").expect_err("unknown");
        let msg = err.to_string();
        assert!(msg.contains("`memory.short_term_max`"), "{msg}");
        assert!(msg.contains("short_term_max_turns"), "{msg}");
        let err = Config::from_toml_str("[nonsense]\na = 1").expect_err("unknown section");
        assert!(err.to_string().contains("`nonsense`"), "{err}");
    }

    #[test]
    fn bad_values_name_their_path() {
        let err =
            Config::from_toml_str("[memory]\nshort_term_max_turns = \"x\"").expect_err("type");
        assert!(
            err.to_string().contains("`memory.short_term_max_turns`"),
            "{err}"
        );
        let err = Config::from_toml_str("[memory]\nshort_term_max_turns = 0").expect_err("zero");
        assert!(
            err.to_string().contains("`memory.short_term_max_turns`"),
            "{err}"
        );
        let err = Config::from_toml_str("[server]\nbind = \"nowhere\"").expect_err("bind");
        assert!(err.to_string().contains("`server.bind`"), "{err}");
        let err = Config::from_toml_str("[search]\nfusion = \"sum\"").expect_err("fusion");
        let msg = err.to_string();
        assert!(
            msg.contains("`search.fusion`") && msg.contains("adaptive"),
            "{msg}"
        );
        let err = Config::from_toml_str("[search]\nlexical_weight = 2").expect_err("weight");
        assert!(err.to_string().contains("`search.lexical_weight`"), "{err}");
    }

    #[test]
    fn config_check_never_prints_a_token() {
        let config = Config::from_toml_str(
            "[server]\ntokens = [\"admin-secret\"]\n[[server.tenants]]\nid = \"acme\"\ntokens = [\"acme-secret\"]",
        )
        .expect("valid");
        // `effective` (what `coda config check` prints) serialises the server table so redacted.
        let mut server = config.server.clone();
        redact_tokens(&mut server);
        let shown = serde_json::to_string(&server).expect("json");
        assert!(
            !shown.contains("admin-secret") && !shown.contains("acme-secret"),
            "{shown}"
        );
        let digest = crate::tenant::TokenDigest::of("acme-secret").display();
        assert!(shown.contains(&digest), "{shown}");
        // What it prints is configuration that opens the same tenants.
        let again = Config::from_toml_str(&format!(
            "[[server.tenants]]\nid = \"acme\"\ntokens = [\"{digest}\"]"
        ))
        .expect("valid");
        let auth = crate::tenant::Authenticator::new(&again.server);
        assert_eq!(
            auth.authenticate(Some("acme-secret")),
            Some(crate::tenant::Principal::Tenant("acme".into()))
        );
    }

    #[test]
    fn seed_aliases_map_to_canonical_keys() {
        let config = Config::from_toml_str(
            "[memory]\nauto_snapshot = true\nsnapshot_interval = 3\nsnapshot_dir = \"snaps\"",
        )
        .expect("aliases");
        assert!(config.snapshots.auto);
        assert_eq!(config.snapshots.interval, 3);
        assert_eq!(config.stores["fs"]["dir"], "snaps");
        assert_eq!(config.memory.auto_snapshot, None);
        let err =
            Config::from_toml_str("[memory]\nauto_snapshot = true\n[snapshots]\nauto = false")
                .expect_err("both set");
        assert!(err.to_string().contains("`memory.auto_snapshot`"), "{err}");
    }
}
