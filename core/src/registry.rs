//! Plugins register themselves by name with `inventory`; configuration picks them at startup.
//!
//! A plugin crate registers each component with one macro call:
//!
//! ```ignore
//! pub const NAME: &str = "memory";
//! fn build(options: MemoryOptions, ctx: &BackendContext) -> Result<Arc<dyn MemoryBackend>> { ... }
//! coda_core::register_backend!(NAME, MemoryOptions, build);
//! ```
//!
//! The options struct is deserialised from the plugin's config table (`[backends.memory]`) through
//! `erased-serde`, so the registry never knows its type. Anything that links plugins must reference
//! each plugin crate (`use coda_backend_memory as _;`), or the linker may drop its registration.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::backend::{BackendContext, MemoryBackend};
use crate::embed::{Embedder, EmbedderContext};
use crate::sink::{EventSink, SinkContext};
use crate::snapshot::{SnapshotStore, StoreContext};
use crate::{Error, Result};

/// One registered component: its name, an option checker and a builder.
pub struct Factory<T: ?Sized + 'static, C: 'static> {
    /// The name configuration uses to pick this component.
    pub name: &'static str,
    /// Parses the options and returns them with every default filled in.
    pub options: fn(&mut dyn erased_serde::Deserializer<'_>) -> Result<Value>,
    /// Parses the options and builds the component.
    pub build: fn(&mut dyn erased_serde::Deserializer<'_>, &C) -> Result<Arc<T>>,
}

/// A registered [`MemoryBackend`].
pub type BackendFactory = Factory<dyn MemoryBackend, BackendContext>;
/// A registered [`EventSink`].
pub type SinkFactory = Factory<dyn EventSink, SinkContext>;
/// A registered [`SnapshotStore`].
pub type StoreFactory = Factory<dyn SnapshotStore, StoreContext>;
/// A registered [`Embedder`].
pub type EmbedderFactory = Factory<dyn Embedder, EmbedderContext>;

inventory::collect!(BackendFactory);
inventory::collect!(SinkFactory);
inventory::collect!(StoreFactory);
inventory::collect!(EmbedderFactory);

/// The kind of component a factory builds, for messages and listings.
pub trait PluginKind: inventory::Collect + Sized + 'static {
    /// Singular noun: `backend`, `sink`, `snapshot store`, `embedder`.
    const KIND: &'static str;
    /// The factory's registered name.
    fn name(&self) -> &'static str;
}

macro_rules! plugin_kind {
    ($factory:ty, $kind:literal) => {
        impl PluginKind for $factory {
            const KIND: &'static str = $kind;
            fn name(&self) -> &'static str {
                self.name
            }
        }
    };
}
plugin_kind!(BackendFactory, "backend");
plugin_kind!(SinkFactory, "sink");
plugin_kind!(StoreFactory, "snapshot store");
plugin_kind!(EmbedderFactory, "embedder");

impl<T: ?Sized + 'static, C: 'static> Factory<T, C> {
    /// A factory record; used by the `register_*!` macros.
    pub const fn new(
        name: &'static str,
        options: fn(&mut dyn erased_serde::Deserializer<'_>) -> Result<Value>,
        build: fn(&mut dyn erased_serde::Deserializer<'_>, &C) -> Result<Arc<T>>,
    ) -> Self {
        Factory {
            name,
            options,
            build,
        }
    }

    /// Builds the component from its option table; errors name `path` and the key inside it.
    pub fn build_with(&'static self, options: Value, path: &str, ctx: &C) -> Result<Arc<T>> {
        with_options(options, path, |de| (self.build)(de, ctx))
    }

    /// Checks an option table and returns it with defaults filled in.
    pub fn check_options(&'static self, options: Value, path: &str) -> Result<Value> {
        with_options(options, path, self.options)
    }
}

/// Every registered name of kind `F`, sorted; a name registered twice is an error.
pub fn names<F: PluginKind>() -> Result<Vec<&'static str>> {
    let mut names: Vec<&'static str> = inventory::iter::<F>().map(|f| f.name()).collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(Error::DuplicatePlugin {
            kind: F::KIND,
            name: pair[0].to_owned(),
        });
    }
    Ok(names)
}

/// The factory registered as `name`; an unknown name lists what is registered.
pub fn find<F: PluginKind>(name: &str) -> Result<&'static F> {
    let available = names::<F>()?;
    inventory::iter::<F>()
        .find(|f| f.name() == name)
        .ok_or_else(|| Error::UnknownPlugin {
            kind: F::KIND,
            name: name.to_owned(),
            available: available.iter().map(|n| n.to_string()).collect(),
        })
}

/// Registered names of every kind, keyed by kind, for `coda plugins`.
pub fn all_names() -> Result<BTreeMap<&'static str, Vec<&'static str>>> {
    Ok(BTreeMap::from([
        (BackendFactory::KIND, names::<BackendFactory>()?),
        (EmbedderFactory::KIND, names::<EmbedderFactory>()?),
        (SinkFactory::KIND, names::<SinkFactory>()?),
        (StoreFactory::KIND, names::<StoreFactory>()?),
    ]))
}

/// Runs `f` on a deserializer over `options`, turning option errors into
/// [`Error::InvalidConfig`] at `path.<key inside the table>`.
fn with_options<R>(
    options: Value,
    path: &str,
    f: impl FnOnce(&mut dyn erased_serde::Deserializer<'_>) -> Result<R>,
) -> Result<R> {
    let mut track = serde_path_to_error::Track::new();
    let result = {
        let de = serde_path_to_error::Deserializer::new(options, &mut track);
        let mut erased = <dyn erased_serde::Deserializer>::erase(de);
        f(&mut erased)
    };
    match result {
        Err(Error::InvalidConfig {
            path: inner,
            reason,
        }) if inner.is_empty() => {
            let inner = track.path().to_string();
            let full = if inner == "." || inner.is_empty() {
                path.to_owned()
            } else {
                format!("{path}.{inner}")
            };
            Err(Error::InvalidConfig { path: full, reason })
        }
        other => other,
    }
}

/// Deserialises a plugin's options; an error has an empty path for the registry to fill in.
pub fn parse_options<O: DeserializeOwned>(
    de: &mut dyn erased_serde::Deserializer<'_>,
) -> Result<O> {
    erased_serde::deserialize(de).map_err(|e| Error::InvalidConfig {
        path: String::new(),
        reason: e.to_string(),
    })
}

/// Serialises checked options back to JSON for the effective configuration.
pub fn options_to_value<O: Serialize>(options: &O) -> Result<Value> {
    serde_json::to_value(options).map_err(|e| Error::config("", e.to_string()))
}

/// Registers a component of kind `$factory`. Use the `register_backend!`, `register_sink!`,
/// `register_store!` and `register_embedder!` wrappers.
#[doc(hidden)]
#[macro_export]
macro_rules! __register_plugin {
    ($factory:ty, $ctx:ty, $component:ty, $name:expr, $options:ty, $build:expr) => {
        const _: () = {
            fn __coda_options(
                de: &mut dyn $crate::__private::erased_serde::Deserializer<'_>,
            ) -> $crate::Result<$crate::__private::serde_json::Value> {
                let options: $options = $crate::registry::parse_options(de)?;
                $crate::registry::options_to_value(&options)
            }
            fn __coda_build(
                de: &mut dyn $crate::__private::erased_serde::Deserializer<'_>,
                ctx: &$ctx,
            ) -> $crate::Result<::std::sync::Arc<$component>> {
                let options: $options = $crate::registry::parse_options(de)?;
                let build: fn($options, &$ctx) -> $crate::Result<::std::sync::Arc<$component>> =
                    $build;
                build(options, ctx)
            }
            $crate::__private::inventory::submit! { <$factory>::new($name, __coda_options, __coda_build) }
        };
    };
}

/// Registers a [`MemoryBackend`]: `register_backend!(NAME, Options, build_fn)` where
/// `build_fn(Options, &BackendContext) -> Result<Arc<dyn MemoryBackend>>`.
#[macro_export]
macro_rules! register_backend {
    ($name:expr, $options:ty, $build:expr) => {
        $crate::__register_plugin!(
            $crate::registry::BackendFactory,
            $crate::backend::BackendContext,
            dyn $crate::backend::MemoryBackend,
            $name,
            $options,
            $build
        );
    };
}

/// Registers an [`EventSink`]: `register_sink!(NAME, Options, build_fn)` where
/// `build_fn(Options, &SinkContext) -> Result<Arc<dyn EventSink>>`.
#[macro_export]
macro_rules! register_sink {
    ($name:expr, $options:ty, $build:expr) => {
        $crate::__register_plugin!(
            $crate::registry::SinkFactory,
            $crate::sink::SinkContext,
            dyn $crate::sink::EventSink,
            $name,
            $options,
            $build
        );
    };
}

/// Registers a [`SnapshotStore`]: `register_store!(NAME, Options, build_fn)` where
/// `build_fn(Options, &StoreContext) -> Result<Arc<dyn SnapshotStore>>`.
#[macro_export]
macro_rules! register_store {
    ($name:expr, $options:ty, $build:expr) => {
        $crate::__register_plugin!(
            $crate::registry::StoreFactory,
            $crate::snapshot::StoreContext,
            dyn $crate::snapshot::SnapshotStore,
            $name,
            $options,
            $build
        );
    };
}

/// Registers an [`Embedder`]: `register_embedder!(NAME, Options, build_fn)` where
/// `build_fn(Options, &EmbedderContext) -> Result<Arc<dyn Embedder>>`.
#[macro_export]
macro_rules! register_embedder {
    ($name:expr, $options:ty, $build:expr) => {
        $crate::__register_plugin!(
            $crate::registry::EmbedderFactory,
            $crate::embed::EmbedderContext,
            dyn $crate::embed::Embedder,
            $name,
            $options,
            $build
        );
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_name_lists_registered_names() {
        let err = find::<EmbedderFactory>("nope")
            .map(|f| f.name)
            .expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "unknown embedder `nope`; registered embedders: auto, hashing"
        );
    }

    #[test]
    fn option_errors_name_the_key_path() {
        let factory = find::<EmbedderFactory>("hashing").expect("registered");
        let err = factory
            .check_options(serde_json::json!({"dims": "many"}), "embedders.hashing")
            .expect_err("bad dims");
        assert!(
            err.to_string().contains("`embedders.hashing.dims`"),
            "{err}"
        );
        let err = factory
            .check_options(serde_json::json!({"dimz": 3}), "embedders.hashing")
            .expect_err("unknown key");
        assert!(err.to_string().contains("unknown field `dimz`"), "{err}");
        let filled = factory
            .check_options(serde_json::json!({}), "embedders.hashing")
            .expect("defaults");
        assert_eq!(filled, serde_json::json!({"dims": 384}));
    }
}

#[cfg(test)]
mod duplicate_tests {
    use super::*;
    use crate::snapshot::SnapshotStore;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct NoOptions {}

    fn refuse(_: NoOptions, _: &StoreContext) -> Result<Arc<dyn SnapshotStore>> {
        Err(Error::Unavailable("test store".into()))
    }

    // Two registrations under one name, in this test binary only.
    crate::register_store!("twice", NoOptions, refuse);
    crate::register_store!("twice", NoOptions, refuse);

    #[test]
    fn a_name_registered_twice_is_an_error_not_first_wins() {
        let err = find::<StoreFactory>("twice")
            .map(|f| f.name)
            .expect_err("duplicate");
        assert_eq!(
            err.to_string(),
            "snapshot store `twice` is registered twice; plugin names must be unique"
        );
    }
}
