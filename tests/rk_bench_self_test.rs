//! rk-bench against its in-process trivial responder for about two seconds: the generator must
//! complete operations and every answer must verify (bench/README.md, "Self-test").

use std::process::Command;

#[test]
fn generator_against_trivial_responder_verifies_every_answer() {
    let json_path =
        std::env::temp_dir().join(format!("rk-bench-self-test-{}.json", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_rk-bench"))
        .args([
            "self-test",
            "--workload",
            "mixed",
            "--read-ratio",
            "0.5",
            "--sessions",
            "4",
            "--outstanding",
            "8",
            "--duration",
            "1.5s",
            "--warmup",
            "0.5s",
            "--distribution",
            "hotkey",
            "--hot-fraction",
            "0.5",
            "--hot-keys",
            "4",
            "--json",
        ])
        .arg(&json_path)
        .output()
        .expect("rk-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "rk-bench failed\n{stdout}\n{stderr}"
    );
    let text = std::fs::read_to_string(&json_path).expect("JSON report written");
    let _ = std::fs::remove_file(&json_path);
    let report: serde_json::Value = serde_json::from_str(&text).expect("JSON report parses");
    assert_eq!(report["verification_errors"], 0, "{text}");
    assert!(
        report["operations"].as_u64().is_some_and(|ops| ops > 0),
        "{text}"
    );
    let kinds: Vec<&str> = report["latencies"]
        .as_array()
        .expect("latencies listed")
        .iter()
        .filter_map(|kind| kind["op"].as_str())
        .collect();
    assert_eq!(kinds, ["get", "set"], "{text}");
}
