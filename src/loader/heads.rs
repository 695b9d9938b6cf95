//! Finding the output heads a checkpoint ships beside its weights (bge-m3's sparse and ColBERT
//! heads) and the special tokens the sparse head must skip.

use tokenizers::Tokenizer;

use super::source::{read_json, FileSource};
use crate::error::Result;
use crate::models::heads::{HeadFiles, COLBERT_FILE, SPARSE_FILE};

/// The heads in the model's folder, whatever its architecture; none is an empty set.
pub(crate) fn find_heads(source: &dyn FileSource, tokenizer: &Tokenizer) -> Result<HeadFiles> {
    let sparse = source.get(SPARSE_FILE.0)?;
    let colbert = source.get(COLBERT_FILE.0)?;
    let special = if sparse.is_some() {
        special_tokens(source, tokenizer)?
    } else {
        Vec::new()
    };
    Ok(HeadFiles {
        sparse,
        colbert,
        special,
    })
}

/// The ids of the cls, eos, pad and unk tokens as `tokenizer_config.json` names them
/// (FlagEmbedding's list), XLM-R's names where it does not.
fn special_tokens(source: &dyn FileSource, tokenizer: &Tokenizer) -> Result<Vec<u32>> {
    let config = match source.get("tokenizer_config.json")? {
        Some(path) => read_json(&path)?,
        None => serde_json::Value::Null,
    };
    let defaults = [
        ("cls_token", "<s>"),
        ("eos_token", "</s>"),
        ("pad_token", "<pad>"),
        ("unk_token", "<unk>"),
    ];
    let mut ids: Vec<u32> = defaults
        .iter()
        .filter_map(|(key, default)| {
            // A plain string, or an added-token object with its text in `content`.
            let token = config
                .get(key)
                .and_then(|v| v.as_str().or_else(|| v.get("content")?.as_str()))
                .unwrap_or(default);
            tokenizer.token_to_id(token)
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}
