//! Models in Ollama's store (`ollama:NAME:TAG`): a fake store of manifests and blobs in a
//! temporary directory, found through `OLLAMA_MODELS`. One test, so that the variable is set for
//! it alone.

mod common;

use std::path::Path;

use common::{assert_same_rows, fixture};
use rembed::{Device, Embedder, Error, OllamaMissing, Options, Request};
use sha2::{Digest, Sha256};

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes the tag's manifest naming `digest` as its model layer, and the blob `bytes` under
/// `blob_digest`'s name (none when `None`).
fn publish(store: &Path, name: &str, tag: &str, digest: &str, blob: Option<(&str, &[u8])>) {
    let dir = store
        .join("manifests/registry.ollama.ai/library")
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": format!("sha256:{}", "0".repeat(64)), "size": 2},
        "layers": [
            {"mediaType": "application/vnd.ollama.image.license", "digest": format!("sha256:{}", "1".repeat(64)), "size": 1},
            {"mediaType": "application/vnd.ollama.image.model", "digest": format!("sha256:{digest}"), "size": 1},
        ],
    });
    std::fs::write(dir.join(tag), serde_json::to_vec(&manifest).unwrap()).unwrap();
    std::fs::create_dir_all(store.join("blobs")).unwrap();
    if let Some((name, bytes)) = blob {
        std::fs::write(store.join("blobs").join(format!("sha256-{name}")), bytes).unwrap();
    }
}

fn load(model: &str) -> rembed::Result<Embedder> {
    Embedder::load(model, Options::default().with_device(Device::Cpu))
}

#[test]
fn ollama_names_resolve_to_verified_gguf_blobs() {
    let store = tempfile::tempdir().unwrap();
    let root = store.path().join("models");
    // The only test in this binary: no other thread reads the environment meanwhile.
    std::env::set_var("OLLAMA_MODELS", &root);

    let err = load("ollama:tiny:q4").unwrap_err();
    assert!(
        matches!(&err, Error::OllamaNotFound { missing: OllamaMissing::Store, path, .. } if *path == root),
        "{err}"
    );

    let gguf = std::fs::read(fixture("gguf/qwen3-wide-q4_k.gguf")).unwrap();
    let digest = sha256(&gguf);
    publish(&root, "tiny", "q4", &digest, Some((&digest, &gguf)));
    let embedder = load("ollama:tiny:q4").unwrap();
    let direct = load(fixture("gguf/qwen3-wide-q4_k.gguf").to_str().unwrap()).unwrap();
    let texts = ["hello world", "東京は日本の首都です。"];
    assert_same_rows(
        "ollama blob",
        &embedder.embed(&texts).unwrap(),
        &direct.embed(&texts).unwrap(),
        0.999999,
    );

    // An Ollama name the registry knows (by its size tag) brings the registry's metadata.
    publish(&root, "qwen3-embedding", "0.6b-q4_K_M", &digest, None);
    let registered = load("ollama:qwen3-embedding:0.6b-q4_K_M").unwrap();
    assert_eq!(registered.spec().name, "qwen3-embedding-0.6b");
    assert_eq!(registered.dim(), 256);
    // Its weights are the blob, not the registry's Hugging Face repo.
    assert!(registered.spec().repo.is_empty());
    // Matryoshka rules from the registry: any dimension from 32, truncated and normalized.
    let small = registered
        .embed_with(&texts, &Request::default().with_dim(64))
        .unwrap()
        .dense;
    assert_eq!(small.ncols(), 64);
    assert!(small
        .rows()
        .into_iter()
        .all(|r| (r.dot(&r) - 1.0).abs() < 1e-4));

    // nomic-embed-text's prompts and Matryoshka dimensions, below the file's width of 256.
    let nomic = std::fs::read(fixture("gguf/nomic-bert-wide-q4_k.gguf")).unwrap();
    let nomic_digest = sha256(&nomic);
    publish(
        &root,
        "nomic-embed-text",
        "v1.5",
        &nomic_digest,
        Some((&nomic_digest, &nomic)),
    );
    let nomic = load("ollama:nomic-embed-text:v1.5").unwrap();
    let spec = nomic.spec();
    assert_eq!(spec.name, "nomic-embed-text-v1.5");
    assert_eq!(spec.document_prompt, "search_document: ");
    assert_eq!(spec.query_prompt, "search_query: ");
    assert_eq!(spec.matryoshka_dims, [64, 128]);
    assert_eq!(spec.pooling, rembed::Pooling::Mean);

    let err = load("ollama:tiny:q8").unwrap_err();
    assert!(
        matches!(&err, Error::OllamaNotFound { missing: OllamaMissing::Manifest, path, .. }
            if path.ends_with("manifests/registry.ollama.ai/library/tiny/q8")),
        "{err}"
    );

    let absent = sha256(b"never pulled");
    publish(&root, "tiny", "missing", &absent, None);
    let err = load("ollama:tiny:missing").unwrap_err();
    assert!(
        matches!(&err, Error::OllamaNotFound { missing: OllamaMissing::Blob, path, .. }
            if path.ends_with(format!("blobs/sha256-{absent}"))),
        "{err}"
    );

    // A blob whose content is not what its name says (an interrupted pull).
    let wrong = sha256(b"other content");
    publish(
        &root,
        "tiny",
        "corrupt",
        &wrong,
        Some((&wrong, &gguf[..gguf.len() / 2])),
    );
    let err = load("ollama:tiny:corrupt").unwrap_err();
    assert!(
        matches!(&err, Error::DigestMismatch { expected, .. } if *expected == wrong),
        "{err}"
    );

    // A blob that is intact but not GGUF (a license, a template).
    let text = b"MIT License".as_slice();
    let license = sha256(text);
    publish(&root, "tiny", "license", &license, Some((&license, text)));
    let err = load("ollama:tiny:license").unwrap_err();
    assert!(matches!(&err, Error::NotGguf { .. }), "{err}");
    assert!(err.to_string().contains(&license), "{err}");
}
