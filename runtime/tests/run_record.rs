//! Run records: the stage rule, child runs from stage metadata, atomic save
//! and checked load, and replay fixtures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rehearse_runtime::config::StageDecl;
use rehearse_runtime::run_record::{
    FixtureMismatch, ReplayFixture, RunFacts, RunRecord, RunStatus, StageStatus,
};
use serde_json::{json, Value};

/// A fresh directory under the system temp dir, named after the test and
/// removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("rehearse-run-record-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const START_MS: i64 = 1_777_032_000_000; // 2026-04-24T12:00:00Z

fn stages(names: &[&str]) -> Vec<StageDecl> {
    names
        .iter()
        .map(|name| StageDecl {
            name: (*name).to_string(),
            ..StageDecl::default()
        })
        .collect()
}

fn facts(status: RunStatus) -> RunFacts {
    RunFacts {
        run_id: "run_0196".into(),
        persona: "merge_captain".into(),
        work_key: "github:burin-labs/harn:pr:462".into(),
        entry_workflow: "workflows/merge.harn#run".into(),
        status,
        started_at_ms: START_MS,
        finished_at_ms: (status != RunStatus::Crashed).then_some(START_MS + 1_500),
        stage_metadata: BTreeMap::new(),
        error: (status == RunStatus::Failed).then(|| "semantic_error".to_string()),
    }
}

fn summary(record: &RunRecord) -> Vec<(String, String, StageStatus, String)> {
    record
        .stages
        .iter()
        .map(|s| (s.id.clone(), s.name.clone(), s.status, s.outcome.clone()))
        .collect()
}

#[test]
fn stages_follow_the_declared_stages_and_the_run_status() {
    let declared = stages(&["plan", "review", "merge"]);
    let completed = RunRecord::from_run(facts(RunStatus::Completed), &declared);
    assert_eq!(completed.started_at, "2026-04-24T12:00:00Z");
    assert_eq!(
        completed.finished_at.as_deref(),
        Some("2026-04-24T12:00:01.5Z")
    );
    assert_eq!(
        summary(&completed),
        [
            (
                "stage_1".into(),
                "plan".into(),
                StageStatus::Completed,
                "success".into()
            ),
            (
                "stage_2".into(),
                "review".into(),
                StageStatus::Completed,
                "success".into()
            ),
            (
                "stage_3".into(),
                "merge".into(),
                StageStatus::Completed,
                "success".into()
            ),
        ]
    );

    let failed = RunRecord::from_run(facts(RunStatus::Failed), &declared);
    assert_eq!(
        summary(&failed),
        [(
            "stage_1".into(),
            "plan".into(),
            StageStatus::Failed,
            "semantic_error".into()
        )]
    );
    assert_eq!(failed.error.as_deref(), Some("semantic_error"));

    let mut no_error = facts(RunStatus::Failed);
    no_error.error = None;
    assert_eq!(
        RunRecord::from_run(no_error, &declared).stages[0].outcome,
        "failed"
    );

    let crashed = RunRecord::from_run(facts(RunStatus::Crashed), &declared);
    assert_eq!(crashed.finished_at, None);
    assert_eq!(
        summary(&crashed),
        [(
            "stage_1".into(),
            "plan".into(),
            StageStatus::Crashed,
            "crashed".into()
        )]
    );

    let undeclared = RunRecord::from_run(facts(RunStatus::Completed), &[]);
    assert_eq!(
        summary(&undeclared),
        [(
            "stage_1".into(),
            "workflows/merge.harn#run".into(),
            StageStatus::Completed,
            "success".into()
        )]
    );
}

#[test]
fn child_runs_are_materialised_from_stage_worker_metadata() {
    let mut run = facts(RunStatus::Completed);
    let worker = |value: Value| BTreeMap::from([("worker".to_string(), value)]);
    run.stage_metadata.insert(
        "plan".into(),
        worker(json!({
            "id": "worker_a",
            "name": "planner",
            "task": "draft the plan",
            "status": "running",
            "started_at": "2026-04-24T12:00:00Z",
            "child_run_id": "run_child_1",
            "audit": {"session_id": "session_7"},
        })),
    );
    // The same worker named again: its fields only fill what is still unset.
    run.stage_metadata.insert(
        "review".into(),
        worker(json!({"id": "worker_a", "name": "other", "finished_at": "2026-04-24T12:00:01Z"})),
    );
    // Defaults for name, task and status.
    run.stage_metadata
        .insert("merge".into(), worker(json!({"id": "worker_b"})));
    // No id, an empty id, or a stage that never ran: no child run.
    run.stage_metadata
        .insert("lint".into(), worker(json!({"id": "worker_c"})));
    let declared = stages(&["plan", "review", "merge"]);
    let mut extra = run.clone();
    extra
        .stage_metadata
        .insert("plan".into(), worker(json!({"name": "no id"})));
    extra
        .stage_metadata
        .insert("review".into(), worker(json!({"id": ""})));
    extra.stage_metadata.remove("merge");
    assert!(RunRecord::from_run(extra, &declared).child_runs.is_empty());

    let record = RunRecord::from_run(run, &declared);
    assert_eq!(record.stages[0].metadata["worker"]["id"], "worker_a");
    assert_eq!(
        serde_json::to_value(&record.child_runs).unwrap(),
        json!([
            {
                "worker_id": "worker_a",
                "worker_name": "planner",
                "parent_stage_id": "stage_1",
                "task": "draft the plan",
                "status": "running",
                "started_at": "2026-04-24T12:00:00Z",
                "finished_at": "2026-04-24T12:00:01Z",
                "run_id": "run_child_1",
                "session_id": "session_7",
            },
            {
                "worker_id": "worker_b",
                "worker_name": "worker",
                "parent_stage_id": "stage_3",
                "task": "",
                "status": "completed",
                "started_at": null,
                "finished_at": null,
                "run_id": null,
                "session_id": null,
            },
        ])
    );
    // Materialising again changes nothing.
    let mut again = record.clone();
    again.materialize_child_runs();
    assert_eq!(again, record);
}

#[test]
fn records_round_trip_through_an_atomic_save() {
    let dir = TempDir::new("records_round_trip_through_an_atomic_save");
    let mut run = facts(RunStatus::Completed);
    run.stage_metadata.insert(
        "review".into(),
        BTreeMap::from([("worker".to_string(), json!({"id": "worker_a"}))]),
    );
    let record = RunRecord::from_run(run, &stages(&["plan", "review"]));
    let path = dir.path().join("nested").join(record.file_name());
    record.save(&path).unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("{\n  \"run_record_version\": 3,\n  \"_type\": \"run_record\",\n  \"id\": \"run_0196\",\n  \"root_run_id\": \"run_0196\","),
        "{text}"
    );
    assert!(text.ends_with("}\n"));
    // Only the record is left behind: the temporary file was renamed.
    let names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["run_0196.json"]);

    assert_eq!(RunRecord::load(&path).unwrap(), record);

    // Saving again overwrites in place.
    let crashed = RunRecord::from_run(facts(RunStatus::Crashed), &[]);
    crashed.save(&path).unwrap();
    assert_eq!(RunRecord::load(&path).unwrap(), crashed);
}

#[test]
fn garbage_files_are_refused_naming_the_path() {
    let dir = TempDir::new("garbage_files_are_refused_naming_the_path");
    let record = RunRecord::from_run(facts(RunStatus::Completed), &stages(&["plan"]));
    let mut future = serde_json::to_value(&record).unwrap();
    future["run_record_version"] = json!(4);
    let mut extra_field = serde_json::to_value(&record).unwrap();
    extra_field["surprise"] = json!(true);
    let mut bad_status = serde_json::to_value(&record).unwrap();
    bad_status["status"] = json!("exploded");
    let mut empty_id = serde_json::to_value(&record).unwrap();
    empty_id["id"] = json!("");
    let mut unfinished = serde_json::to_value(&record).unwrap();
    unfinished["finished_at"] = json!(null);

    let cases: Vec<(&str, String, String)> = vec![
        ("empty.json", String::new(), "malformed run record at `{}`: EOF while parsing a value at line 1 column 0".into()),
        ("text.json", "not json".into(), "malformed run record at `{}`: expected ident at line 1 column 2".into()),
        ("list.json", "[1]".into(), "malformed run record at `{}`: expected a JSON object".into()),
        ("noversion.json", "{\"id\": \"x\"}".into(), "malformed run record at `{}`: missing `run_record_version`".into()),
        ("future.json", future.to_string(), "unsupported run record version 4 at `{}`, expected 3".into()),
        ("textversion.json", "{\"run_record_version\": \"1\"}".into(), "unsupported run record version \"1\" at `{}`, expected 3".into()),
        ("extra.json", extra_field.to_string(), "malformed run record at `{}`: unknown field `surprise`".into()),
        ("status.json", bad_status.to_string(), "malformed run record at `{}`: unknown variant `exploded`, expected one of `completed`, `failed`, `crashed`".into()),
        ("emptyid.json", empty_id.to_string(), "invalid run record at `{}`: empty `id`".into()),
        ("unfinished.json", unfinished.to_string(), "invalid run record at `{}`: a completed run without `finished_at`".into()),
    ];
    for (name, content, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let error = RunRecord::load(&path).unwrap_err().to_string();
        let expected = expected.replace("{}", &path.display().to_string());
        assert!(error.starts_with(&expected), "{name}: {error}");
    }

    let missing = dir.path().join("missing.json");
    let error = RunRecord::load(&missing).unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "failed to read run record at `{}`: ",
            missing.display()
        )),
        "{error}"
    );

    // A record that breaks its invariants is not written at all.
    let mut invalid = record.clone();
    invalid.persona.clear();
    let target = dir.path().join("invalid.json");
    assert_eq!(
        invalid.save(&target).unwrap_err().to_string(),
        format!(
            "invalid run record at `{}`: empty `persona`",
            target.display()
        )
    );
    assert!(!target.exists());

    // A directory where the file should go is a write error naming the path.
    let occupied = dir.path().join("occupied");
    std::fs::create_dir_all(occupied.join("inside")).unwrap();
    let error = record.save(&occupied).unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "failed to write run record at `{}`: ",
            occupied.display()
        )),
        "{error}"
    );
}

#[test]
fn a_fixture_passes_on_its_own_run_and_names_each_differing_assertion() {
    let declared = stages(&["plan", "review", "merge"]);
    let record = RunRecord::from_run(facts(RunStatus::Completed), &declared);
    let fixture = ReplayFixture::from_run(&record);
    assert_eq!(
        serde_json::to_value(&fixture).unwrap(),
        json!({
            "replay_fixture_version": 1,
            "source_run_id": "run_0196",
            "persona": "merge_captain",
            "expected_status": "completed",
            "stage_assertions": [
                {"name": "plan", "expected_status": "completed", "expected_outcome": "success"},
                {"name": "review", "expected_status": "completed", "expected_outcome": "success"},
                {"name": "merge", "expected_status": "completed", "expected_outcome": "success"},
            ],
        })
    );
    assert_eq!(fixture.check(&record), []);

    let failed = RunRecord::from_run(facts(RunStatus::Failed), &declared);
    let lines: Vec<String> = fixture
        .check(&failed)
        .iter()
        .map(FixtureMismatch::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            r#"status: expected "completed", got "failed""#,
            r#"stages.0.status: expected "completed", got "failed""#,
            r#"stages.0.outcome: expected "success", got "semantic_error""#,
            r#"stages.1.name: expected "review", got null"#,
            r#"stages.1.status: expected "completed", got null"#,
            r#"stages.1.outcome: expected "success", got null"#,
            r#"stages.2.name: expected "merge", got null"#,
            r#"stages.2.status: expected "completed", got null"#,
            r#"stages.2.outcome: expected "success", got null"#,
        ]
    );

    // The other way round: a stage the fixture does not expect is named too.
    let renamed = RunRecord::from_run(facts(RunStatus::Completed), &stages(&["plan", "check"]));
    let short = ReplayFixture::from_run(&RunRecord::from_run(
        facts(RunStatus::Completed),
        &stages(&["plan"]),
    ));
    assert_eq!(
        short.check(&renamed),
        [FixtureMismatch {
            path: "stages.1.name".into(),
            expected: Value::Null,
            actual: json!("check"),
        }]
    );
}

#[test]
fn fixtures_round_trip_and_refuse_unknown_versions() {
    let dir = TempDir::new("fixtures_round_trip_and_refuse_unknown_versions");
    let record = RunRecord::from_run(facts(RunStatus::Failed), &stages(&["plan"]));
    let fixture = ReplayFixture::from_run(&record);
    let path = dir.path().join("fixture.json");
    fixture.save(&path).unwrap();
    assert_eq!(ReplayFixture::load(&path).unwrap(), fixture);

    let mut future = serde_json::to_value(&fixture).unwrap();
    future["replay_fixture_version"] = json!(7);
    std::fs::write(&path, future.to_string()).unwrap();
    assert_eq!(
        ReplayFixture::load(&path).unwrap_err().to_string(),
        format!(
            "unsupported replay fixture version 7 at `{}`, expected 1",
            path.display()
        )
    );
    std::fs::write(&path, "{").unwrap();
    assert!(ReplayFixture::load(&path)
        .unwrap_err()
        .to_string()
        .starts_with(&format!(
            "malformed replay fixture at `{}`: ",
            path.display()
        )));
}
