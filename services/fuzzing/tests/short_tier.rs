//! The fuzz targets' short tier: each target over its corpus and thousands of deterministic
//! mutations of it, in `make test` (`make fuzz` runs them under libFuzzer for longer). The
//! figures go to `$MERIDIAN_REPORTS/fuzz.json`.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use meridian_proto::Message as _;

/// Mutations per target.
const MUTATIONS: usize = 5000;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    match target {
        "workflow_definition" => std::fs::read_dir(root.join("workflows"))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "yaml"))
            .map(|e| std::fs::read(e.path()).unwrap())
            .collect(),
        "bus_message" => {
            let task = meridian_proto::workflow::v1::TaskCreated {
                task_id: "t1".to_owned(),
                ..Default::default()
            }
            .encode_to_vec();
            (0..meridian_proto::EVENT_TYPES.len())
                .map(|i| {
                    let mut input = vec![u8::try_from(i % 256).unwrap()];
                    input.extend_from_slice(
                        b"id=0190f5a2-7c1e-7000-8000-000000000001\ntime=2026-11-26T18:00:00Z\n\
                          type=workflow.task.created\nsource=/meridian/workflow\nsubject=t1\n\n",
                    );
                    input.extend_from_slice(&task);
                    input
                })
                // Found by cargo fuzz: a field name longer than AMQP allows.
                .chain(std::iter::once(
                    [&[0x92, 0x31][..], &[0xff; 82], b"J=\n}"].concat(),
                ))
                .collect()
        }
        "link_token" => {
            let survey = uuid::Uuid::from_u128(0x0190_f5a2_7c1e_7000_8000_0000_0000_0001);
            vec![
                meridian_relationship::domain::token::sign(
                    b"fuzz-survey-link-secret-0123456789",
                    survey,
                    1_900_000_000,
                )
                .into_bytes(),
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ".to_vec(),
                vec![0xff; 24],
            ]
        }
        _ => vec![
            vec![5, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            vec![0; 40],
            vec![0xff; 40],
        ],
    }
}

#[test]
fn every_fuzz_target_survives_its_corpus_and_mutations() {
    let mut report = Vec::new();
    let mut crashes = Vec::new();
    for (name, target) in meridian_fuzzing::TARGETS {
        let runs = meridian_fuzzing::run(name, *target, &corpus(name), MUTATIONS);
        report.push(serde_json::json!({"target": name, "inputs": runs.inputs, "crashes": runs.crashes.len()}));
        crashes.extend(
            runs.crashes
                .iter()
                .take(3)
                .map(|(input, why)| format!("{name}: {why} on {input:?}")),
        );
    }
    let inputs: usize = report
        .iter()
        .filter_map(|r| r["inputs"].as_u64())
        .map(|n| usize::try_from(n).unwrap())
        .sum();
    let report = serde_json::json!({"targets": report, "inputs": inputs, "crashes": crashes.len()});
    if let Some(dir) = std::env::var_os("MERIDIAN_REPORTS") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("fuzz.json"),
            serde_json::to_string_pretty(&report).unwrap(),
        )
        .unwrap();
    }
    assert!(crashes.is_empty(), "no target crashes: {crashes:#?}");
}
