//! The dashboard's own logic (bin/assets/state.js: dedup, resume, back-off, reload, metrics
//! parsing, client-side diff; bin/assets/scope.js: scope query strings, picker choices, event
//! filtering) under Node's test runner. Skips with a notice when `node` is
//! missing, unless `CI=true`.

use std::path::Path;
use std::process::Command;

#[test]
fn dashboard_state_logic_passes_its_node_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tests = root.join("bin/assets/tests");
    let output = match Command::new("node")
        .arg("--test")
        .arg(&tests)
        .current_dir(root)
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "CI=true but `node` is not installed (apt-get install nodejs)"
            );
            eprintln!("NOTICE: skipping the dashboard's JavaScript tests: `node` is not installed");
            return;
        }
        Err(e) => panic!("could not run node: {e}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "node --test {} failed:\n{stdout}\n{stderr}",
        tests.display()
    );
    assert!(
        stdout.contains("# pass ") && !stdout.contains("# pass 0"),
        "no JavaScript test ran:\n{stdout}"
    );
}
