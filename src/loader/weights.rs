//! Locating safetensors weights: one file, or the shards listed in `model.safetensors.index.json`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::source::{read_json, FileSource};
use crate::error::{Error, Result};

const INDEX: &str = "model.safetensors.index.json";
const SINGLE: &str = "model.safetensors";
/// Weight files rembed refuses to load: unpickling runs arbitrary code.
const PICKLES: &[&str] = &[
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "model.bin",
];

/// The safetensors files holding the model's weights, shards in index order.
/// `dir` is the Transformer module's folder inside the model (usually empty).
pub(crate) fn safetensors_files(source: &dyn FileSource, dir: &str) -> Result<Vec<PathBuf>> {
    let file = |name: &str| {
        if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        }
    };
    if let Some(index) = source.get(&file(INDEX))? {
        let json = read_json(&index)?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| Error::Malformed {
                path: index.clone(),
                reason: "no `weight_map` object".into(),
            })?;
        let shards: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
        if shards.is_empty() {
            return Err(Error::Malformed {
                path: index,
                reason: "`weight_map` lists no files".into(),
            });
        }
        return shards
            .into_iter()
            .map(|shard| source.require(&file(shard)))
            .collect();
    }
    if let Some(single) = source.get(&file(SINGLE))? {
        return Ok(vec![single]);
    }
    for pickle in PICKLES {
        if source.get(&file(pickle))?.is_some() {
            return Err(Error::PickleWeights {
                model: source.describe(),
                file: pickle.to_string(),
            });
        }
    }
    Err(Error::MissingFile {
        model: source.describe(),
        file: SINGLE.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::source::LocalDir;

    #[test]
    fn sharded_single_and_pickle() {
        let dir = tempfile::tempdir().unwrap();
        let source = LocalDir(dir.path().to_path_buf());
        assert!(matches!(
            safetensors_files(&source, ""),
            Err(Error::MissingFile { .. })
        ));

        std::fs::write(dir.path().join("pytorch_model.bin"), b"").unwrap();
        let err = safetensors_files(&source, "").unwrap_err();
        assert!(matches!(err, Error::PickleWeights { .. }), "{err}");

        std::fs::write(dir.path().join("model.safetensors"), b"").unwrap();
        assert_eq!(
            safetensors_files(&source, "").unwrap(),
            vec![dir.path().join("model.safetensors")]
        );

        let index = r#"{"weight_map": {"a": "model-00002-of-00002.safetensors", "b": "model-00001-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}}"#;
        std::fs::write(dir.path().join(INDEX), index).unwrap();
        let err = safetensors_files(&source, "").unwrap_err();
        assert!(
            err.to_string().contains("model-00001-of-00002.safetensors"),
            "{err}"
        );
        for shard in [
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
        ] {
            std::fs::write(dir.path().join(shard), b"").unwrap();
        }
        let files = safetensors_files(&source, "").unwrap();
        assert_eq!(files.len(), 2);
        assert!(files[0].ends_with("model-00001-of-00002.safetensors"));

        std::fs::write(dir.path().join(INDEX), "{not json").unwrap();
        let err = safetensors_files(&source, "").unwrap_err();
        assert!(err.to_string().contains(INDEX), "{err}");
    }
}
