//! The binary's commands: their stdout is their output alone (logs go to stderr), so a
//! script can read it, and what it reports works through the HTTP API.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::process::Command;

/// Runs `inbox-gateway ARGS` on `database_url` with info logs on; answers stdout and stderr.
fn run(database_url: &str, args: &[&str]) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_inbox-gateway"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("APP_ENV", "test")
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "info")
        .output()
        .expect("inbox-gateway runs");
    let stdout = String::from_utf8(output.stdout).expect("utf-8 stdout");
    let stderr = String::from_utf8(output.stderr).expect("utf-8 stderr");
    assert!(output.status.success(), "{args:?} failed: {stderr}");
    (stdout, stderr)
}

#[actix_web::test]
async fn create_admin_prints_only_the_ids_of_an_admin_who_can_log_in() {
    let app = spawn_app().await;
    let (stdout, _) = run(
        &app.database_url,
        &[
            "create-admin",
            "--organization",
            "Cli Org",
            "--email",
            "cli-admin@example.test",
            "--password",
            "cli-password",
        ],
    );
    let ids: Value = serde_json::from_str(&stdout).expect("stdout is one JSON document");
    let token = app.login("cli-admin@example.test", "cli-password").await;
    let (status, me) = app
        .call(
            Method::GET,
            &format!("/users/{}", ids["user_id"]),
            None,
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["organization_id"], ids["organization_id"]);
    assert_eq!(me["role"], "admin");
}

#[actix_web::test]
async fn seed_prints_only_its_report_and_logs_to_stderr() {
    let app = spawn_app().await;
    let (stdout, stderr) = run(&app.database_url, &["seed", "--conversations", "12"]);
    assert!(stderr.contains("seeded"), "the seed's log line: {stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("stdout is one JSON document");
    let token = app
        .login(
            report["admin_email"].as_str().expect("admin_email"),
            report["admin_password"].as_str().expect("admin_password"),
        )
        .await;
    let (status, page) = app
        .call(Method::GET, "/conversations?$limit=0", None, Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 12);
    assert_eq!(report["conversations"], 12);
}

/// A command that cannot start says what failed and why, the driver's own words
/// included, and exits 1.
#[test]
fn a_failing_command_names_what_failed_and_its_cause() {
    let output = Command::new(env!("CARGO_BIN_EXE_inbox-gateway"))
        .arg("migrate")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("APP_ENV", "test")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/nothing")
        .output()
        .expect("inbox-gateway runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    let why = line
        .strip_prefix("error: cannot connect to the database: ")
        .unwrap_or_else(|| panic!("names what failed: {line}"));
    assert!(!why.trim().is_empty(), "and why: {line}");
}
