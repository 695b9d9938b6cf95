//! The examples' output files (`examples/common/output.rs`): checked before any work, written
//! atomically, never replaced by a failed run; and the examples themselves refusing bad outputs
//! before loading a model, NaN vectors, and an empty Messenger export.

#[path = "../examples/common/output.rs"]
mod output;

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::copy_dir;
use ndarray::array;
use output::{non_finite_rows, Format, Output};

const BOTH: &[Format] = &[Format::Npy, Format::Jsonl];

/// Names in `dir`, sorted: what a run left behind, temporary files included.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_format_comes_from_the_flag_or_a_known_extension() {
    let resolve = |name: &str, given| Format::resolve(Path::new(name), given, BOTH);
    assert_eq!(resolve("v.npy", None).unwrap(), Format::Npy);
    assert_eq!(resolve("v.NPY", None).unwrap(), Format::Npy, "any case");
    assert_eq!(resolve("v.jsonl", None).unwrap(), Format::Jsonl);
    assert_eq!(resolve("v.JsonL", None).unwrap(), Format::Jsonl);
    for name in ["v.txt", "v", "v.json", "v.npy.bak", ".npy"] {
        let err = resolve(name, None).unwrap_err().to_string();
        assert!(
            err.contains("--format") && err.contains(".npy or .jsonl"),
            "{name}: {err}"
        );
    }
    assert_eq!(resolve("v.txt", Some(Format::Npy)).unwrap(), Format::Npy);
    assert_eq!(resolve("v", Some(Format::Jsonl)).unwrap(), Format::Jsonl);
    // chunk_messages writes JSONL only.
    let err = Format::resolve(Path::new("c.npy"), None, &[Format::Jsonl]).unwrap_err();
    assert!(err.to_string().contains("name it .jsonl"), "{err}");
}

#[test]
fn bad_destinations_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file.npy");
    std::fs::write(&file, b"x").unwrap();
    let cases: [(PathBuf, &str); 4] = [
        (dir.path().to_path_buf(), "is a directory"),
        (dir.path().join("missing/v.npy"), "does not exist"),
        (file.join("v.npy"), "is not a folder"),
        // Not even root can create files in /proc.
        (
            PathBuf::from("/proc/rembed-output-test.npy"),
            "cannot write",
        ),
    ];
    for (path, expected) in cases {
        let err = Output::claim(&path, None, BOTH).err().unwrap().to_string();
        assert!(err.contains(expected), "{}: {err}", path.display());
    }
    assert_eq!(listing(dir.path()), ["file.npy"]);
}

#[test]
fn a_claimed_output_is_written_whole_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.jsonl");
    let out = Output::claim(&path, None, BOTH).unwrap();
    assert_eq!(out.format(), Format::Jsonl);
    assert!(
        !path.exists(),
        "nothing at the destination before the commit"
    );
    out.commit(|w| Ok(w.write_all(b"[1.0]\n")?)).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "[1.0]\n");
    assert_eq!(listing(dir.path()), ["v.jsonl"]);
}

#[cfg(unix)]
#[test]
fn a_new_file_has_the_usual_mode_and_a_replaced_one_keeps_its_own() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let fresh = dir.path().join("fresh.jsonl");
    Output::claim(&fresh, None, BOTH)
        .unwrap()
        .commit(|_| Ok(()))
        .unwrap();
    assert_eq!(mode(&fresh) & 0o644, 0o644, "readable by others, not 0600");
    let kept = dir.path().join("kept.jsonl");
    std::fs::write(&kept, b"old").unwrap();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640)).unwrap();
    Output::claim(&kept, None, BOTH)
        .unwrap()
        .commit(|_| Ok(()))
        .unwrap();
    assert_eq!(mode(&kept), 0o640);
}

#[test]
fn a_failed_write_leaves_the_earlier_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.npy");
    std::fs::write(&path, b"the earlier good file").unwrap();
    let out = Output::claim(&path, None, BOTH).unwrap();
    let err = out
        .commit(|w| {
            w.write_all(&[0u8; 100_000])?;
            Err(std::io::Error::from_raw_os_error(28).into()) // ENOSPC, mid-write
        })
        .unwrap_err();
    assert!(format!("{err:#}").contains("v.npy"), "{err:#}");
    assert_eq!(std::fs::read(&path).unwrap(), b"the earlier good file");
    assert_eq!(listing(dir.path()), ["v.npy"], "temporary file removed");

    // Dropped without a commit (the model failed to load, the embedding failed): same.
    drop(Output::claim(&path, None, BOTH).unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), b"the earlier good file");
    assert_eq!(listing(dir.path()), ["v.npy"]);
}

/// A real full disk: a 256 KiB tmpfs holding a good file, then a write that does not fit. Needs
/// the right to mount (root in CI); says so and passes where mounting is not allowed.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_leaves_the_earlier_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(dir.path())
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (needs root); the injected error test covers the logic");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(dir.path());

    use ndarray_npy::WriteNpyExt;
    let path = dir.path().join("v.npy");
    let good = ndarray::Array2::<f32>::from_elem((100, 384), 0.5); // ~150 KiB
    Output::claim(&path, None, BOTH)
        .unwrap()
        .commit(|w| Ok(good.write_npy(w)?))
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let big = ndarray::Array2::<f32>::from_elem((200, 384), 1.0); // ~300 KiB: cannot fit
    let err = Output::claim(&path, None, BOTH)
        .unwrap()
        .commit(|w| Ok(big.write_npy(w)?))
        .unwrap_err();
    assert!(format!("{err:#}").contains("No space left"), "{err:#}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(listing(dir.path()), ["v.npy"]);
}

#[test]
fn non_finite_rows_are_found() {
    let m = array![
        [0.0f32, 1.0],
        [f32::NAN, 1.0],
        [1.0, 2.0],
        [0.0, f32::INFINITY],
        [f32::NEG_INFINITY, f32::NAN]
    ];
    assert_eq!(non_finite_rows(m.view()), [1, 3, 4]);
    assert!(non_finite_rows(array![[1.0f32]].view()).is_empty());
}

// The example binaries themselves. `cargo test` builds every example before running any test;
// they sit in `examples/` next to this test's `deps/` folder.

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e} (run the whole `cargo test`)", path.display()));
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for source in [
        format!("examples/{name}.rs"),
        "examples/common/output.rs".into(),
    ] {
        let changed = std::fs::metadata(root.join(&source))
            .unwrap()
            .modified()
            .unwrap();
        assert!(
            built >= changed,
            "{} is older than {source}: run the whole `cargo test`, which builds the examples",
            path.display()
        );
    }
    path
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn embed_refuses_a_bad_output_before_loading_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "hello\n").unwrap();
    // The model does not exist: an error about the output proves it came first.
    for (output, expected) in [
        (dir.path().join("missing/v.npy"), "does not exist"),
        (dir.path().to_path_buf(), "is a directory"),
        (dir.path().join("v.txt"), "--format"),
    ] {
        let (ok, stderr) = run(Command::new(example("embed"))
            .args([
                "--model",
                "/nonexistent/model",
                "--device",
                "cpu",
                "--input",
            ])
            .arg(&input)
            .arg("--output")
            .arg(&output));
        assert!(
            !ok && stderr.contains(expected),
            "{}: {stderr}",
            output.display()
        );
        assert!(!stderr.contains("nonexistent/model"), "{stderr}");
    }
}

/// The bert-mean fixture with one token's embedding row set to NaN, in a temporary folder.
fn model_with_a_nan_token(dir: &Path, word: &str) {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bert-mean");
    copy_dir(&fixture, dir);
    let tokenizer = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    let ids = tokenizer.encode(word, false).unwrap().get_ids().to_vec();
    assert_eq!(ids.len(), 1, "{word} must be one token: {ids:?}");
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut owned: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in tensors.tensors() {
        let mut data = view.data().to_vec();
        if name.ends_with("word_embeddings.weight") {
            assert_eq!(view.dtype(), safetensors::Dtype::F32);
            let width = view.shape()[1] * 4;
            let row = ids[0] as usize * width;
            for v in data[row..row + width].chunks_mut(4) {
                v.copy_from_slice(&f32::NAN.to_le_bytes());
            }
        }
        owned.push((name, view.dtype(), view.shape().to_vec(), data));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = owned
        .iter()
        .map(|(name, dtype, shape, data)| {
            (
                name.clone(),
                safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
}

#[test]
fn embed_refuses_nan_vectors_and_keeps_the_earlier_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    model_with_a_nan_token(&model, "hello");
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "good morning\nhello there\nfine\nsay hello\n").unwrap();
    let output = dir.path().join("v.npy");
    std::fs::write(&output, b"the earlier good file").unwrap();
    let (ok, stderr) = run(Command::new(example("embed"))
        .arg("--model")
        .arg(&model)
        .args(["--device", "cpu", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output));
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("line 2:") && stderr.contains("line 4:"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("line 1:") && !stderr.contains("line 3:"),
        "{stderr}"
    );
    assert!(stderr.contains("[1, 3]"), "{stderr}");
    assert_eq!(std::fs::read(&output).unwrap(), b"the earlier good file");
    assert_eq!(listing(dir.path()), ["in.txt", "model", "v.npy"]);

    // Without the NaN lines the same model writes its vectors.
    std::fs::write(&input, "good morning\nfine\n").unwrap();
    let (ok, stderr) = run(Command::new(example("embed"))
        .arg("--model")
        .arg(&model)
        .args(["--device", "cpu", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output));
    assert!(ok, "{stderr}");
    let vectors: ndarray::Array2<f32> = ndarray_npy::read_npy(&output).unwrap();
    assert_eq!(vectors.nrows(), 2);
}

#[test]
fn chunk_messages_fails_on_an_empty_export_and_keeps_the_earlier_file() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    std::fs::create_dir_all(export.join("inbox")).unwrap();
    let output = dir.path().join("chunks.jsonl");
    std::fs::write(&output, "{\"earlier\": true}\n").unwrap();
    let (ok, stderr) = run(Command::new(example("chunk_messages"))
        .arg("--input")
        .arg(&export)
        .arg("--output")
        .arg(&output));
    assert!(!ok && stderr.contains("message_N.json"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&output).unwrap(),
        "{\"earlier\": true}\n"
    );
    assert_eq!(listing(dir.path()), ["chunks.jsonl", "export"]);

    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/messenger");
    let (ok, stderr) = run(Command::new(example("chunk_messages"))
        .arg("--input")
        .arg(&fixture)
        .arg("--output")
        .arg(&output));
    assert!(ok, "{stderr}");
    assert_eq!(std::fs::read_to_string(&output).unwrap().lines().count(), 3);
    let (ok, stderr) = run(Command::new(example("chunk_messages"))
        .arg("--input")
        .arg(&fixture)
        .arg("--output")
        .arg(dir.path().join("chunks.txt")));
    assert!(!ok && stderr.contains("--format"), "{stderr}");
}

#[test]
fn embed_long_chunks_writes_each_chunk_with_its_byte_range() {
    let dir = tempfile::tempdir().unwrap();
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bert-mean");
    let long = "the quick brown fox jumps over the lazy dog. ".repeat(12);
    let input = dir.path().join("in.txt");
    std::fs::write(&input, format!("{}\nshort text\n", long.trim_end())).unwrap();
    let embed = |long: &str, output: &Path| {
        run(Command::new(example("embed"))
            .arg("--model")
            .arg(&model)
            .args(["--device", "cpu", "--max-length", "16", "--long", long])
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(output))
    };

    let chunks = dir.path().join("c.jsonl");
    let (ok, stderr) = embed("chunks", &chunks);
    assert!(ok, "{stderr}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&chunks)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first: Vec<_> = lines.iter().filter(|l| l["line"] == 1).collect();
    assert!(
        first.len() > 2,
        "a long line is several chunks: {}",
        lines.len()
    );
    let text = long.trim_end();
    for chunk in &first {
        let (start, end) = (
            chunk["start"].as_u64().unwrap() as usize,
            chunk["end"].as_u64().unwrap() as usize,
        );
        assert!(start < end && end <= text.len(), "{chunk}");
        assert!(!chunk["vector"].as_array().unwrap().is_empty());
    }
    assert_eq!(first.last().unwrap()["end"], text.len());
    assert_eq!(lines.iter().filter(|l| l["line"] == 2).count(), 1);

    // `mean`: one row per text; NumPy is refused for per-chunk output before any work.
    let mean = dir.path().join("m.npy");
    let (ok, stderr) = embed("mean", &mean);
    assert!(ok, "{stderr}");
    let vectors: ndarray::Array2<f32> = ndarray_npy::read_npy(&mean).unwrap();
    assert_eq!(vectors.nrows(), 2);
    let (ok, stderr) = embed("chunks", &dir.path().join("c.npy"));
    assert!(!ok && stderr.contains("JSONL"), "{stderr}");
}
